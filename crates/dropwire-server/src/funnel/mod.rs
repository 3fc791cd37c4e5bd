//! The hub's side of the funnel ledger ([`dropwire_funnel::Ledger`]): the [`Feed`] that
//! writes facts off the claim path, and the reconciliation that makes the ledger agree
//! with the store after a crash.
//!
//! Facts whose ids derive from the store's state (claims, drop states) may be fed many
//! times — by several nodes, by a retried rid, by the reconciliation — and are recorded
//! once. The feed is bounded: when it is full a batch is dropped and counted, and the
//! reconciliation (at start and every 30 s) writes what the store knows that the ledger
//! lacks, so every acknowledged claim reaches the ledger exactly once.

mod feed;
mod reconcile;

pub use feed::Feed;
pub use reconcile::{reconcile_forever, reconcile_once};

use dropwire_funnel::Ledger;

/// The ledger and its feed, as the hub uses them.
#[derive(Debug, Clone)]
pub struct Funnel {
    pub ledger: Ledger,
    pub feed: Feed,
}
