//! Test support: real servers the tests start themselves, on ports no other test (in this
//! process or another) and no outgoing connection can take, stopped when dropped.
//!
//! # Layout
//!
//! - [`ports`]: [`ports::Port`], a free port reserved across processes, below the kernel's
//!   ephemeral range (so a restarted server finds its port still free).
//! - [`redis`]: [`RedisServer`] (one `redis-server`) and [`RedisCluster`] (three masters).
//! - [`postgres`]: [`PgServer`], a throwaway PostgreSQL cluster (`initdb` + `postgres`, run as
//!   the `postgres` user when the tests run as root); one database per test on it.
//! - [`heavy`]: one test at a time of those that start several servers or processes.

pub mod ports;
pub mod postgres;
pub mod redis;

pub use ports::Port;
pub use postgres::PgServer;
pub use redis::{RedisCluster, RedisServer};

/// Held by each test that runs several hub nodes, redis-servers or processes: such tests
/// in one test binary run one at a time, so on a 2-core machine they never compete with
/// each other for the cores (light tests still run beside them). Tests in separate
/// binaries already run one binary after another under `cargo test`.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}
