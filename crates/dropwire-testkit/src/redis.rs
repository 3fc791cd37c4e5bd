//! A real `redis-server` on a reserved free port, with its own directory, killed when
//! dropped — and, should the test process die first, by a watchdog that sees it go. Also a
//! 3-master Redis Cluster of such servers ([`RedisCluster`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::Port;

/// A redis-server this process started (`appendonly yes`, `appendfsync always`).
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    /// Held for the server's life, so a restart finds the port still free.
    _reserved: Port,
    dir: tempfile_dir::Dir,
    child: Option<Child>,
    extra: Vec<String>,
}

mod tempfile_dir {
    /// A directory removed on drop.
    #[derive(Debug)]
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl RedisServer {
    /// Starts one on a free port; panics if `redis-server` is not installed.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts one with extra `redis-server` arguments (`["--replicaof", "127.0.0.1", "7000"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        Self::start_on(Port::free(), extra)
    }

    fn start_on(reserved: Port, extra: &[&str]) -> RedisServer {
        let port = reserved.port;
        let dir =
            std::env::temp_dir().join(format!("dropwire-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut server = RedisServer {
            port,
            _reserved: reserved,
            dir: tempfile_dir::Dir(dir),
            child: None,
            extra: extra.iter().map(|a| format!("'{a}'")).collect(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.0.clone()
    }

    fn spawn(&mut self) {
        // The shell waits for redis-server and kills it once this process is gone.
        let script = format!(
            "redis-server --port {port} --bind 127.0.0.1 --dir '{dir}' --save '' --appendonly yes --appendfsync always \
             --logfile '{dir}/redis.log' {extra} & r=$!; echo $r > '{dir}/pid'; \
             while kill -0 {parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.2; done; kill -9 $r 2>/dev/null",
            port = self.port,
            dir = self.dir.0.display(),
            parent = std::process::id(),
            extra = self.extra.join(" "),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("sh");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not start on port {} (is it installed?)",
            self.port
        );
    }

    /// SIGKILL: no shutdown, no final fsync beyond what `appendfsync always` did.
    pub fn kill9(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.0.join("pid")) {
            let _ = Command::new("kill")
                .args(["-9", pid.trim()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (its append-only file is replayed).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A Redis Cluster of three masters (no replicas) on free ports, each an
/// append-only [`RedisServer`], joined with `redis-cli --cluster create`.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts and joins the three masters and waits until the cluster serves every slot.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_on(
                    Port::free_with_bus(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = RedisCluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !cluster.nodes.iter().all(|n| n.cluster_ok()) {
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Every node's URL (any of them is a seed for the cluster client).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

impl RedisServer {
    /// Whether this cluster node reports `cluster_state:ok`.
    fn cluster_ok(&self) -> bool {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "cluster", "info"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
    }

    /// Runs `redis-cli -p PORT args…` against this server and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
