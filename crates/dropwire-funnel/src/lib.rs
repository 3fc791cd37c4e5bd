//! The funnel ledger: every step a viewer takes across a maker's drops, as append-only
//! facts in a real SQL database — embedded SQLite by default (`<data-dir>/ledger.sqlite3`,
//! WAL mode), PostgreSQL when many hub nodes share one ledger — with the waitlist and the
//! privacy requests (export, erasure) beside them.
//!
//! The live store stays the source of truth for stock and claims during a drop; the hub
//! feeds the ledger off the claim path and reconciles it from the store, so every
//! acknowledged claim appears once (fact ids are derived from what they describe, and a
//! second write of an id is a no-op).
//!
//! # Layout
//!
//! - [`Ledger`] (`db`): opening a database by URL, migrations (`migrations/sqlite`,
//!   `migrations/postgres`, applied at open), the connection pools.
//! - `facts`: [`Ledger::record`] (a batch of facts, one transaction) and
//!   [`Ledger::facts`] (the feed, filtered).
//! - `waitlist`: [`Ledger::join_waitlist`] and the entries of a drop.
//! - `privacy`: [`Ledger::export_viewer`] and [`Ledger::erase_viewer`].
//! - `consequences`: what a new fact sets off, in the transaction that records it — a
//!   webhook message per subscribed endpoint (the outbox), a follow-up coupon, nurture
//!   timers.
//! - `webhooks`: endpoints, leasing due messages, recording attempts, replay, dead letters.
//! - `makers`: the makers (tenants) and their admin tokens, kept as hashes.
//! - `coupons`: follow-up coupons, redeemed once within their validity.
//! - `nurture`: the maker's schedule and the durable timers, fired once across nodes.
//! - `recipes`: the makers' recipes (drop templates), versioned, and the shipped ones
//!   loaded once per ledger ([`Ledger::seed_recipes`]).
//! - `coops`: co-ops (makers sharing a launch calendar) and their members, and the co-op
//!   KPIs ([`Ledger::coop_kpis`]: each member's pooled figures and their total).
//! - `passes`: the makers' pass rules and the passes viewers earn, earned in the
//!   transaction of the fact that completes a rule; the key that signs portable passes.
//! - `rollup`: the KPI rollups, kept in the transaction of each new fact; [`kpi`]: the
//!   KPIs read from them (definitions in `docs/metrics.md`).
//! - [`conformance`] (feature `test-support`): one function per guarantee; SQLite and
//!   PostgreSQL each expand [`ledger_conformance_tests!`] to prove the same behaviour.
//! - [`mod@error`]: [`FunnelError`], this crate's one error type.

mod consequences;
mod coops;
mod coupons;
mod db;
pub mod error;
mod facts;
pub mod kpi;
mod makers;
mod nurture;
mod passes;
mod privacy;
mod recipes;
mod rollup;
mod waitlist;
mod webhooks;

#[cfg(feature = "test-support")]
pub mod conformance;

pub use coops::{Coop, CoopKpis, CoopTotal, MakerKpis};
pub use coupons::{Coupon, CouponRefusal};
pub use db::{Backend, Ledger};
pub use error::FunnelError;
pub use facts::{FactFilter, MAX_PAGE, StoredFact};
pub use kpi::{CurvePoint, DropKpis, Ltv, LtvWindow};
pub use makers::{Maker, MakerToken, NewToken, TokenOwner};
pub use nurture::DueTimer;
pub use passes::{EarnedBy, Grants, MAX_COUNT, Pass, PassRule, PassRuleSpec};
pub use privacy::{Erased, ViewerExport};
pub use recipes::Recipe;
pub use waitlist::{Joined, WaitlistEntry};
pub use webhooks::{Attempt, Delivery, Endpoint, EndpointPatch, Leased, Outcome, Target};
