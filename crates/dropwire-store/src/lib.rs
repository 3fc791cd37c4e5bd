//! Where dropwire keeps its state: one small [`Store`] trait, two backends, one
//! conformance suite that proves both behave the same.
//!
//! # Layout
//!
//! - [`Store`] (this file): the trait the hub talks to, and its request/answer types.
//! - [`error`]: [`StoreError`], this crate's one error type.
//! - [`memory`]: [`MemoryStore`], the embedded default. State lives in memory, finely
//!   locked per drop and per SKU; every change is appended to a journal ([`journal`]) and
//!   fsync'd in group commits before the caller hears "claimed". Snapshots truncate the
//!   journal and move settled drops to an archive on disk, so start-up loads the last
//!   snapshot and replays only the journal after it, and memory follows the open drops.
//! - `files` (private): the header, checksummed frames and whole-file replacement that the
//!   journal, snapshots and the archive share.
//! - `sync` (private): std locks taken without poisoning, the one way this crate locks.
//! - [`redis`]: [`RedisStore`], every piece of state in Redis (Lua scripts, one hash tag
//!   per drop, so it runs on Redis Cluster too), and [`RedisBus`], its [`Bus`].
//! - quests: [`Store::award`] puts a quest's points on a drop's board once per viewer
//!   ([`QuestAward`]); `memory::quests` and `redis::quests` (`award.lua`).
//! - [`bus`]: the cross-node [`Bus`] that orders one drop's broadcasts across hub nodes,
//!   and [`MemoryBus`], the same contract in one process (for multi-node tests without
//!   Redis).
//! - `conformance` (feature `test-support`): one function per guarantee, generic over
//!   any `Store` (and, in `conformance::bus`, over any `Bus`); each backend's tests expand
//!   `conformance_tests!` to call them all. The shipped library leaves it out; this
//!   crate's and the server's tests enable the feature through their dev-dependencies.
//!
//! The store allocates stock; it does not decide *whether* a claim window is open. The hub
//! computes that from the timeline (a pure function of the control log and the time, the
//! same on every node); when the window is shut it still asks the store, with the refusal
//! ([`ClaimRequest::refusal`]), so that a rid decided earlier keeps its answer.

pub mod bus;
#[cfg(feature = "test-support")]
pub mod conformance;
pub mod error;
mod files;
pub mod journal;
pub mod memory;
pub mod redis;
mod sync;
/// Test support (real `redis-server`s on reserved ports): [`dropwire_testkit`].
#[cfg(feature = "test-support")]
pub use dropwire_testkit as testing;

use async_trait::async_trait;
use dropwire_core::claim::{ClaimReason, LEADERBOARD_SIZE, LeaderEntry, Score, leaderboard};
use dropwire_core::protocol::StockItem;
use dropwire_core::{Claim, ClaimCode, ClaimOutcome, ClaimState, ControlEntry, DropId, DropRecord};
use serde::{Deserialize, Serialize};

pub use bus::{AudienceReport, AudienceTotals, Bus, BusEvent, Mark, MemoryBus, Published};
pub use error::StoreError;
pub use memory::{MemoryStore, MemoryStoreConfig, Residency, SnapshotPolicy, SnapshotReport};
pub use redis::bus::RedisBus;
pub use redis::{DEFAULT_RETENTION, HoldClock, RedisStore, RedisStoreConfig};

/// A viewer asks for one unit of `sku` (the hub has checked that its window is open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub drop_id: DropId,
    pub sku: String,
    pub viewer_id: String,
    pub handle: String,
    /// The client's request id: the same (viewer, rid) always gets the same answer.
    pub rid: String,
    pub now_ms: u64,
    /// Set when the hub's timeline has refused the claim (`not_open` or `closed`): the
    /// store answers what it decided before for this (viewer, rid), if anything — a grant
    /// whose answer was lost before a pause or the close must not turn into a refusal —
    /// and otherwise this reason, recording nothing.
    #[serde(default)]
    pub refusal: Option<ClaimReason>,
    /// Set during a SKU's early-access window: only members of the drop's early-access
    /// segment ([`Store::admit`]) may claim; anyone else is answered `not_open` (unless the
    /// rid was decided before), and nothing is recorded.
    #[serde(default)]
    pub members_only: bool,
}

/// A viewer earns a quest's points: at most once per (quest, viewer), only while the
/// quest's window is open, with the points landing on the drop's leaderboard in the same
/// step. The hub decides the quest, its points and its window from the script and the
/// timeline (the same on every node); the store decides "once" and "in the window".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestAward {
    pub drop_id: DropId,
    /// Which quest: `s{index}` for a script cue, `a{log position}` for an ad-hoc one.
    pub quest: String,
    pub viewer_id: String,
    pub handle: String,
    pub points: u32,
    /// The request id: the same (quest, viewer, rid) always gets the same answer; another
    /// rid of a viewer already awarded hears [`AwardOutcome::AlreadyAwarded`].
    pub rid: String,
    /// When it happened (the viewer's tap, the claim, the redemption), Unix ms.
    pub now_ms: u64,
    /// The window, `[opens_ms, closes_ms)`: outside it the answer is
    /// [`AwardOutcome::Closed`], and nothing is recorded.
    pub opens_ms: u64,
    pub closes_ms: u64,
    /// At most this many viewers earn the quest (a `keyword` quest's `first_n`); the
    /// next hear [`AwardOutcome::Full`]. `None`: everyone who earns it in the window.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What the store answers to a [`QuestAward`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwardOutcome {
    /// The points are on the board (now, or earlier for the same rid).
    Awarded { points: u32 },
    /// The viewer earned this quest before, with another rid.
    AlreadyAwarded,
    /// Outside the quest's window.
    Closed,
    /// The quest's `limit` of viewers earned it already; nothing is recorded.
    Full,
}

/// The handle an erased viewer's claims and score show.
pub const ERASED_HANDLE: &str = "erased";

/// A viewer asks for a personal code of a unique flash coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponRequest {
    pub drop_id: DropId,
    /// Which coupon: `s{index}` for a script cue, `a{log position}` for an ad-hoc one.
    pub coupon: String,
    /// How many personal codes the coupon has.
    pub limit: u32,
    pub viewer_id: String,
    pub now_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponOutcome {
    /// The viewer's personal code (the same one if it asks again).
    Granted {
        code: String,
    },
    SoldOut,
}

/// Counts that change as viewers claim: stock, claims by state, the leaderboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropFigures {
    /// Units left per SKU, in inventory order.
    pub stock: Vec<StockItem>,
    pub held: u64,
    pub redeemed: u64,
    pub expired: u64,
    /// Distinct viewers with at least one claim.
    pub claimers: u64,
    /// The top [`LEADERBOARD_SIZE`], by the rule in [`dropwire_core::claim`].
    pub leaderboard: Vec<LeaderEntry>,
    /// Quest awards so far (each changes the board: the hub's figure version counts them).
    #[serde(default)]
    pub awards: u64,
}

impl DropFigures {
    /// The figures of a drop from its stock left, its claims and its viewers' scores: the
    /// one tally both backends use.
    pub fn tally<'a>(
        stock: Vec<StockItem>,
        claims: impl IntoIterator<Item = &'a Claim>,
        scores: impl IntoIterator<Item = &'a Score>,
    ) -> DropFigures {
        let mut f = DropFigures {
            stock,
            leaderboard: leaderboard(scores, LEADERBOARD_SIZE),
            ..DropFigures::default()
        };
        // A viewer may score without a claim (a quest), so claimers are counted from claims.
        let mut claimers = std::collections::HashSet::new();
        for claim in claims {
            claimers.insert(claim.viewer_id.as_str());
            match claim.state {
                ClaimState::Held => f.held += 1,
                ClaimState::Redeemed => f.redeemed += 1,
                ClaimState::Expired => f.expired += 1,
            }
        }
        f.claimers = claimers.len() as u64;
        f
    }
}

/// The hub's state, behind one small trait. Every method is atomic on its own.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new drop; [`StoreError::AlreadyExists`] when its id is taken.
    async fn create_drop(&self, record: DropRecord) -> Result<(), StoreError>;

    /// One drop with its control log.
    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError>;

    /// Every drop, oldest first.
    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError>;

    /// At least every drop that is not closed, oldest first: a backend that keeps past
    /// drops apart answers with what may still change (open drops, and closed ones whose
    /// holds are not settled yet) so callers that walk the drops regularly cost what the
    /// open drops cost. Callers check the timeline themselves. By default, every drop.
    async fn open_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        self.list_drops().await
    }

    /// Appends to the control log if it still has `expected_len` entries (so two nodes
    /// cannot both start a drop), and returns the new log; [`StoreError::Conflict`] if not.
    async fn append_control(
        &self,
        id: &DropId,
        expected_len: usize,
        entry: ControlEntry,
    ) -> Result<Vec<ControlEntry>, StoreError>;

    /// Allocates one unit atomically: stock, the per-viewer limit and the rid are checked,
    /// and a granted claim is durable before this returns.
    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError>;

    /// `held` → `redeemed`. [`StoreError::NoSuchClaim`] for an unknown code,
    /// [`StoreError::NotHeld`] for an expired or already redeemed one (a hold past its
    /// deadline counts as expired even before the sweeper has run). A backend with a clock
    /// of its own may judge the deadline by it instead of `now_ms` ([`HoldClock`]: Redis).
    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError>;

    /// Expires every hold whose deadline is at or before `now_ms` (or, with a backend's own
    /// clock, [`HoldClock`], its time), returning its unit to stock; returns the claims it
    /// expired. Safe to run concurrently from several nodes.
    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError>;

    /// Every claim of a drop, in the order they were granted.
    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError>;

    /// Stock left, claims by state and the leaderboard.
    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError>;

    /// Hands out a personal code of a unique coupon, at most `limit` in all, one per viewer.
    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError>;

    /// Awards a quest's points to a viewer: once per (quest, viewer), inside the window,
    /// the points added to the viewer's score atomically. [`StoreError::NoSuchDrop`] for
    /// an unknown drop.
    async fn award(&self, award: QuestAward) -> Result<AwardOutcome, StoreError>;

    /// Reserves `n` broadcast sequence numbers for a drop and returns the first. Numbers
    /// are never handed out twice, across restarts too.
    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError>;

    /// Adds a viewer to a drop's early-access segment (the waitlist and, later, pass
    /// holders); idempotent. [`StoreError::NoSuchDrop`] for an unknown drop.
    async fn admit(&self, drop: &DropId, viewer_id: &str) -> Result<(), StoreError>;

    /// Erases a viewer in every drop: its id becomes `tombstone` and its handle
    /// [`ERASED_HANDLE`] wherever the store keeps them (claims, scores, request ids,
    /// per-viewer counts, coupons, segments), so counts stay right and nothing links back.
    /// Returns how many claims changed.
    async fn erase_viewer(&self, viewer_id: &str, tombstone: &str) -> Result<u64, StoreError>;

    /// Whether the backend is reachable and healthy (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(StoreError::Random)?;
    Ok(buf)
}

/// A fresh claim code from the OS CSPRNG.
pub(crate) fn new_claim_code() -> Result<ClaimCode, StoreError> {
    Ok(ClaimCode::from_random(random_bytes()?))
}
