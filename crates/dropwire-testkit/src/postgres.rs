//! A real, throwaway PostgreSQL server on a reserved free port: its own `initdb`-ed cluster
//! in a temporary directory (trust authentication, superuser `postgres`, no fsync), stopped
//! and removed when dropped — and, should the test process die first, stopped and removed
//! by a watchdog that sees it go. One server holds many databases: give each test its own
//! with [`PgServer::create_database`].
//!
//! The programs come from the newest `/usr/lib/postgresql/*/bin` (Debian's layout), else
//! from `PATH`. initdb and postgres refuse to run as root; as root (here and in CI) they run
//! as the `postgres` system user instead.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::Port;

const INSTALL: &str = "install Debian's postgresql package; scripts/setup.sh does";

/// A PostgreSQL server this process started (`fsync=off`, `full_page_writes=off`,
/// `max_connections=200`). Commits stay synchronous: each is written to the kernel (not
/// synced) before it returns, so a committed transaction survives [`kill9`](Self::kill9);
/// with `synchronous_commit=off` the last ones would die with the WAL buffers.
#[derive(Debug)]
pub struct PgServer {
    pub port: u16,
    /// Held for the server's life, so a restart finds the port still free.
    _reserved: Port,
    /// Holds `data/`, the unix socket, `pid` and `postgres.log`; removed on drop.
    dir: PathBuf,
    /// The watchdog shell, which exits once postgres is gone.
    child: Option<Child>,
}

impl PgServer {
    /// Creates a cluster and starts a server on a free port; panics if PostgreSQL is not
    /// installed or the server does not come up within 60 s.
    pub fn start() -> PgServer {
        let reserved = Port::free();
        let port = reserved.port;
        // Sticky and open to all, like /tmp: the `postgres` user reaches its directory
        // through it, and its watchdog can remove that directory.
        let parent = std::env::temp_dir().join("dropwire-pg");
        std::fs::create_dir_all(&parent).expect("postgres parent dir");
        let _ = std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o1777));
        let dir = parent.join(format!("{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("postgres dir");
        if let Some((uid, gid)) = run_as() {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown postgres dir");
        }
        let mut server = PgServer {
            port,
            _reserved: reserved,
            dir,
            child: None,
        };
        let mut initdb = server.owned(Command::new(bin("initdb")));
        initdb.arg("-D").arg(server.dir.join("data"));
        run(initdb.args("-U postgres --auth=trust -E UTF8 --no-locale --no-sync".split(' ')));
        server.spawn();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// Creates database `name` (a plain identifier) with `createdb` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        run(self.client("createdb").arg(name));
        self.database_url(name)
    }

    /// Runs `sql` with `psql` in database `db` and returns what it printed (unaligned,
    /// tuples only); panics if it fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let args = ["-XAt", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql];
        run(self.client("psql").args(args))
    }

    /// SIGKILL to the postmaster, like a crash: its backends exit on their own, and the
    /// next [`restart`](Self::restart) runs crash recovery.
    pub fn kill9(&mut self) {
        self.stop("KILL");
    }

    /// Stops it (immediate shutdown) if running and starts it again on the same port and
    /// data directory.
    pub fn restart(&mut self) {
        self.stop("QUIT");
        self.spawn();
    }

    fn database_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A client program aimed at this server as superuser `postgres`.
    fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(bin(program));
        cmd.args(format!("-h 127.0.0.1 -p {} -U postgres", self.port).split(' '));
        cmd
    }

    /// `cmd`, run in the server's directory, as the `postgres` user if this process is root.
    fn owned(&self, mut cmd: Command) -> Command {
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        if let Some((uid, gid)) = run_as() {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let log = self.dir.join("postgres.log");
        loop {
            let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
            // The shell waits for postgres; once this process is gone (`kill -0` is refused
            // across users, /proc still tells), it shuts postgres down and removes the dir.
            let script = format!(
                "'{postgres}' -D '{dir}/data' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
                 -c fsync=off -c full_page_writes=off -c max_connections=200 \
                 >> '{dir}/postgres.log' 2>&1 & r=$!; echo $r > '{dir}/pid'; \
                 while {{ kill -0 {parent} 2>/dev/null || [ -d /proc/{parent} ]; }} && kill -0 $r 2>/dev/null; \
                 do sleep 0.2; done; kill -0 $r 2>/dev/null && {{ kill -QUIT $r; wait $r; rm -rf '{dir}'; }}",
                postgres = bin("postgres").display(),
                dir = self.dir.display(),
                port = self.port,
                parent = std::process::id(),
            );
            let mut sh = self.owned(Command::new("sh"));
            sh.arg("-c").arg(script).stdout(Stdio::null());
            let child = self.child.insert(sh.spawn().expect("sh"));
            while child.try_wait().ok().flatten().is_none() {
                if ready(self.port) {
                    return;
                }
                let port = self.port;
                assert!(
                    Instant::now() < deadline,
                    "postgres did not come up on port {port}:\n{}",
                    tail(&log, 0)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            self.child = None;
            // Right after kill9 the dead server's backends may hold its shared memory a moment.
            let said = tail(&log, from);
            if !said.contains("still in use") || Instant::now() > deadline {
                panic!("postgres exited on port {}:\n{said}", self.port);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends `signal` to postgres and waits until it and its watchdog are gone.
    fn stop(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = std::fs::read_to_string(self.dir.join("pid")).unwrap_or_default();
        let kill = |s: &str| {
            Command::new("kill")
                .args([&*format!("-{s}"), pid.trim()])
                .status()
        };
        let _ = kill(signal);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = (kill("KILL"), child.kill());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.dir.join("pid"));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop("QUIT");
        // A killed postmaster leaves its System V shared memory segment behind: line 7 of
        // its postmaster.pid reads "KEY ID".
        let lock = std::fs::read_to_string(self.dir.join("data/postmaster.pid"));
        let shm = lock
            .unwrap_or_default()
            .lines()
            .nth(6)
            .unwrap_or_default()
            .to_owned();
        if let Some(id) = shm.split_whitespace().nth(1) {
            let _ = Command::new("ipcrm").args(["-m", id]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` and returns what it printed; panics with its errors if it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output();
    let out = out.unwrap_or_else(|e| panic!("{cmd:?}: {e}: {INSTALL}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Whether the server on `port` accepts connections.
fn ready(port: u16) -> bool {
    let mut cmd = Command::new(bin("pg_isready"));
    let cmd = cmd
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null());
    cmd.status()
        .unwrap_or_else(|e| panic!("pg_isready: {e}: {INSTALL}"))
        .success()
}

/// The last lines of `log` written from byte `from` on.
fn tail(log: &Path, from: usize) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(bytes.get(from..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// PostgreSQL program `name`: from the newest `/usr/lib/postgresql/*/bin`, else on `PATH`.
fn bin(name: &str) -> PathBuf {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let newest = DIR.get_or_init(|| {
        let version = |e: &std::fs::DirEntry| -> Vec<u32> {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split('.').map(|n| n.parse().unwrap_or(0)).collect()
        };
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten();
        let installed = versions
            .flatten()
            .filter(|e| e.path().join("bin/initdb").is_file());
        installed.max_by_key(version).map(|e| e.path().join("bin"))
    });
    newest
        .as_ref()
        .map_or_else(|| name.into(), |dir| dir.join(name))
}

/// The `postgres` user's uid and gid when this process runs as root (which initdb and
/// postgres refuse), else `None`.
fn run_as() -> Option<(u32, u32)> {
    static IDS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *IDS.get_or_init(|| {
        let id = |args: &str| {
            run(Command::new("id").args(args.split(' ')))
                .parse()
                .expect("id")
        };
        (id("-u") == 0).then(|| (id("-u postgres"), id("-g postgres")))
    })
}
