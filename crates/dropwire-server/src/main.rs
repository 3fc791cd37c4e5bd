//! `dropwire serve`: the hub binary; `dropwire healthcheck`: its readiness probe.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use clap::Parser;
use dropwire_funnel::Ledger;
use dropwire_server::config::{self, Cli, Command, Config, LOG_ENV, ServeArgs};
use dropwire_server::healthcheck::{self, HealthcheckArgs};
use dropwire_server::{AppState, Options};
use dropwire_store::{
    Bus, MemoryStore, MemoryStoreConfig, RedisBus, RedisStore, RedisStoreConfig, Store,
};

const ADMIN_TOKEN_FILE: &str = "admin-token";

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(*args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck(args) => {
            // One request: one thread is plenty.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            Ok(runtime.block_on(check_health(&args)))
        }
    }
}

/// `dropwire healthcheck`: 0 when the hub answers 2xx, 1 with one line on stderr otherwise.
async fn check_health(args: &HealthcheckArgs) -> ExitCode {
    match healthcheck::run(args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the error and its causes (a config file's parse error, say).
            eprintln!("dropwire healthcheck: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let log = std::env::var_os(LOG_ENV).map(|v| v.to_string_lossy().into_owned());
    let filter = config::log_filter(log.as_deref())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = Config::resolve(args)?;
    run(config).await
}

async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", config.data_dir.display()))?;
    let (admin_token, shown) = match config.admin_tokens.split_first() {
        Some((first, rest)) => {
            let also = if rest.is_empty() {
                ""
            } else {
                " (and the others listed)"
            };
            (first.clone(), format!("as given by --admin-token{also}"))
        }
        None => admin_token_from(&config.data_dir)?,
    };
    let (store, bus): (Arc<dyn Store>, Option<Arc<dyn Bus>>) = match &config.redis {
        Some(url) => {
            let mut redis = RedisStoreConfig::of(config.redis_nodes.clone(), config.redis_cluster);
            redis.wait_replicas = config.redis_wait_replicas;
            redis.op_timeout = config.limits.redis_timeout;
            redis.retention = config.redis_retention();
            let store = RedisStore::connect(redis)
                .await
                .with_context(|| format!("cannot reach --redis {url}"))?;
            // Any number of nodes may share this Redis: the bus carries each drop's
            // broadcasts to all of them in one order.
            let node = format!("{}-{}", std::process::id(), ulid::Ulid::new());
            let bus = RedisBus::open(&store, node)
                .await
                .with_context(|| format!("cannot open the cross-node bus on --redis {url}"))?;
            (Arc::new(store), Some(Arc::new(bus)))
        }
        None => (
            Arc::new(
                MemoryStore::open(MemoryStoreConfig {
                    data_dir: Some(config.data_dir.clone()),
                    fsync: config.fsync,
                    snapshots: config.journal.snapshots,
                })
                .with_context(|| {
                    format!(
                        "cannot open the embedded store in {}",
                        config.data_dir.display()
                    )
                })?,
            ),
            None,
        ),
    };
    let ledger = match config.ledger.url(&config.data_dir) {
        Some(url) => {
            if config.redis.is_some() && url.starts_with("sqlite:") {
                tracing::warn!(
                    "the funnel ledger is this node's own SQLite file: hub nodes sharing --redis should share --ledger postgres://…"
                );
            }
            let shown = url.split('@').next_back().unwrap_or(&url).to_owned();
            Some(
                Ledger::open(&url)
                    .await
                    .with_context(|| format!("cannot open the funnel ledger at {shown}"))?,
            )
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on --bind {}", config.bind))?;
    let addr = listener.local_addr()?;
    let mut opts = Options::from_config(store, admin_token, &config);
    opts.bus = bus;
    opts.ledger = ledger;
    let state = AppState::start(opts)
        .await
        .context("cannot load drops from the store")?;
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let demo = if config.demo {
        let id = dropwire_server::demo::start_demo(&state)
            .await
            .context("cannot make the demo drop live (--demo)")?;
        format!("demo overlay:  {base}/live/{id}\n")
    } else {
        String::new()
    };
    // The banner is for the person who started us; a closed stdout must not stop the hub.
    let banner = format!(
        "dropwire listening on http://{addr}\ncontrol panel: {base}/panel\n{demo}admin token:   {shown}\n"
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    dropwire_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Reads the admin token kept in the data dir, or makes one (readable by the owner only);
/// with what the banner says of it. The token itself is shown once, when it is made, and
/// only to a terminal: never to a log (a redirected stdout is one).
fn admin_token_from(dir: &Path) -> anyhow::Result<(String, String)> {
    let path = dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            let shown = format!("kept in {}", path.display());
            return Ok((t.trim().to_owned(), shown));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = format!(
        "dwa_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(dropwire_store::random_bytes::<24>()?)
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    let shown = if std::io::stdout().is_terminal() {
        format!("{token} (new; kept in {}, shown this once)", path.display())
    } else {
        format!("new, kept in {} (shown on a terminal only)", path.display())
    };
    Ok((token, shown))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
