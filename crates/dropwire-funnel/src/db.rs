//! Opening the ledger: the URL picks the backend, migrations run at open.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::FunnelError;

/// Which database holds the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The funnel ledger. Cheap to clone (the clones share the pools).
#[derive(Debug, Clone)]
pub struct Ledger {
    pub(crate) backend: Backend,
    /// Writes. SQLite allows one writer at a time: one connection, so writes queue here
    /// rather than fail with "database is locked".
    pub(crate) write: AnyPool,
    /// Reads (WAL lets them run beside the writer). The same pool on PostgreSQL.
    pub(crate) read: AnyPool,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Every connection waits this long for a lock or a pooled connection before failing.
const WAIT: Duration = Duration::from_secs(10);

impl Ledger {
    /// Opens (creating if needed) the ledger at `url` — `sqlite:PATH` (the file is created;
    /// WAL mode) or `postgres://…` — and applies the migrations this build has.
    pub async fn open(url: &str) -> Result<Ledger, FunnelError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(FunnelError::BadUrl(url.to_owned()));
        };
        let ledger = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
                let pool = |n: u32| {
                    AnyPoolOptions::new()
                        .max_connections(n)
                        .acquire_timeout(WAIT)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                conn.execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                                )
                                .await
                                .map(|_| ())
                            })
                        })
                        .connect_with(options.clone())
                };
                let write = pool(1).await?;
                SQLITE_MIGRATIONS.run(&write).await?;
                let read = pool(4).await?;
                Ledger {
                    backend,
                    write,
                    read,
                }
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(WAIT)
                    .connect_with(options)
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ledger {
                    backend,
                    write: pool.clone(),
                    read: pool,
                }
            }
        };
        Ok(ledger)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), FunnelError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes the pools (waiting for statements under way).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Unix ms as the database keeps them.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Unix ms read back.
pub(crate) fn unms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `($1, $2, …), (…)`: the placeholders of a multi-row `VALUES` of `rows` rows of `cols`.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
