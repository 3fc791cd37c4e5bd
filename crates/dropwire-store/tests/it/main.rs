//! The store's integration tests, one binary (one link, not one per file): the shared
//! conformance suite on every backend (in memory, journaled, a real `redis-server`, a real
//! Redis Cluster), the journal, snapshots and the archive on disk, Redis's holds and
//! outages. Run one module with `cargo test -p dropwire-store --test it redis_holds::`.

mod history;

mod archive;
mod draw;
mod journal;
mod memory;
mod redis;
mod redis_cluster;
mod redis_holds;
mod snapshot;
