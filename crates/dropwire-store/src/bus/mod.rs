//! The cross-node bus: how whatever one hub node causes reaches viewers on every node, in
//! one order. One small trait, [`Bus`], two implementations: [`RedisBus`](crate::RedisBus)
//! (what nodes sharing Redis use) and [`MemoryBus`] (nodes in one process sharing one
//! store, for tests). The contract both keep is proven by one suite,
//! [`bus_conformance_tests!`](crate::bus_conformance_tests) in [`crate::conformance::bus`].
//!
//! The contract, per drop:
//!
//! - **One sequence.** [`Bus::publish`] gives each broadcast the drop's next `seq`, keeps it
//!   in the drop's stream (the last few thousand) and pushes it to every node subscribed to
//!   the drop ([`Bus::subscribe`]), all at once, so pushes arrive in `seq` order. A node
//!   that sees a gap reads what it missed from the stream ([`Bus::since`], [`Bus::recent`]).
//! - **Marks.** A broadcast every node would compute alike goes out under a [`Mark`]: a
//!   cue or state change once per drop ([`Mark::Once`]: `dup` for the rest, `stale` for a
//!   node whose control log misses an entry from before the moment it is about), a figure
//!   only if it is newer than the last published ([`Mark::Newer`]).
//! - **Audience.** Each node reports its viewers ([`Bus::report_audience`]); the bus sums
//!   the reports still in time, keeps the peak and the unique viewers, and publishes the
//!   total as a `viewers` broadcast when it changed.
//! - **Log changes** are announced to every node ([`Bus::announce_log`],
//!   [`BusEvent::LogChanged`]), so they reload the control log at once.

mod memory;

use async_trait::async_trait;
use dropwire_core::DropId;
use tokio::sync::mpsc;

pub use self::memory::MemoryBus;
use crate::StoreError;

/// Viewer ids one audience report carries at most (the rest wait for the next report).
pub const IDS_PER_REPORT: usize = 1000;
/// Broadcasts one stream read returns at most.
pub const RANGE_MAX: usize = 4096;

/// What arrives for one drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// A broadcast, exactly as viewers get it.
    Broadcast(String),
    /// The control log now has this many entries.
    LogChanged(u64),
    /// The subscription was re-established: anything may have been missed.
    Resubscribed,
}

/// The condition a broadcast is published under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Always published.
    Always,
    /// Published once per drop under this name, and only from a node that knows every
    /// control-log entry before `at_ms` (it computed the message from `log_len` entries).
    Once {
        field: String,
        log_len: u64,
        at_ms: u64,
        /// Flags of the drop the claim script reads for its window check, set when this
        /// is published: `timeline` (the drop went live), `open:SKU` (a reveal),
        /// `closed` (the close). (Redis alone: the memory store trusts the hub's window.)
        sets: Vec<String>,
    },
    /// Published if it is newer than the last seen under `field` — `version` (the claims
    /// and their changes so far) and `revealed` (the products revealed so far) both at
    /// least as high, one of them higher — and `content` differs from what was last
    /// published under it. Both only grow, so no node can publish an older figure after a
    /// newer one, and a reveal gets its stock out even when no claim changed.
    Newer {
        field: &'static str,
        version: u64,
        revealed: u64,
        content: String,
    },
}

/// What became of a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Sent(u64),
    /// Another node published it already (or the figure is not newer).
    Dup,
    /// The node's control log is behind: reload it and recompute.
    Stale,
    /// The drop does not exist.
    Gone,
}

/// A node's viewer report, and the drop's totals over every live node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceReport {
    pub count: u64,
    pub anonymous_joins: u64,
    pub new_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AudienceTotals {
    pub now: u64,
    pub peak: u64,
    pub unique: u64,
}

/// One node's end of the bus (module docs).
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    /// Whether this node hears the other nodes now (for `/readyz`).
    fn is_connected(&self) -> bool;

    /// Subscribes this node to a drop; returns once the subscription holds, so everything
    /// published afterwards arrives on the returned queue. A queue that is full drops
    /// pushes (read them back with [`Bus::since`]); one that is dropped ends the
    /// subscription; subscribing again replaces it.
    async fn subscribe(&self, id: &DropId) -> Result<mpsc::Receiver<BusEvent>, StoreError>;

    /// Publishes one broadcast under `mark`: `prefix` + its `seq` + `suffix` is what viewers
    /// get.
    async fn publish(
        &self,
        id: &DropId,
        prefix: &str,
        suffix: &str,
        mark: &Mark,
    ) -> Result<Published, StoreError>;

    /// Tells every node that the drop's control log now has `len` entries.
    async fn announce_log(&self, id: &DropId, len: u64) -> Result<(), StoreError>;

    /// The last `seq` published and up to `n` of the latest broadcasts, oldest first.
    async fn recent(&self, id: &DropId, n: usize) -> Result<(u64, Vec<(u64, String)>), StoreError>;

    /// The broadcasts after `after`, up to `upto` (inclusive) or the latest, oldest first
    /// (at most [`RANGE_MAX`]; what the stream no longer holds is not returned).
    async fn since(
        &self,
        id: &DropId,
        after: u64,
        upto: Option<u64>,
    ) -> Result<Vec<(u64, String)>, StoreError>;

    /// Makes sure the drop's next `seq` is above `seen` (the last one this node delivered);
    /// returns where the bus stood. Below `seen` means the bus lost broadcasts (Redis came
    /// back from an older snapshot): numbering then resumes after `seen`, never reusing one.
    async fn keep_seq_above(&self, id: &DropId, seen: u64) -> Result<u64, StoreError>;

    /// Reports this node's viewers of a drop (`deadline_ms` 0: it holds none any more;
    /// otherwise when this report stops counting) and publishes the total if it changed.
    /// An unknown drop answers zeros.
    async fn report_audience(
        &self,
        id: &DropId,
        report: &AudienceReport,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Result<AudienceTotals, StoreError>;
}
