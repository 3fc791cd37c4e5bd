//! The embedded store's state: one slot per drop, a ledger per SKU, the claim book, the
//! viewers' request ids, and the journal record type.
//!
//! # Locks
//!
//! Every lock belongs to one drop (the store's gate, the drop map's `RwLock` and the
//! indexes of claim codes and hold deadlines aside: the gate is held, shared, around every
//! change; the map only to look a drop up, add one or archive one). When several are held
//! they are taken in this order: gate → viewer shard → SKU ledger → book → holds → the
//! store's due index; and `record`, `coupons`, `seq_next`, `members` alone (`members` also under
//! a viewer shard). Expiry returns a unit to its SKU after letting go of the book.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use dropwire_core::claim::{REFUSED_RIDS_KEPT, Score};

use super::index::Holds;
use dropwire_core::{Claim, ClaimCode, ClaimReason, ClaimState, ControlEntry, DropId, DropRecord};
use serde::{Deserialize, Serialize};

/// Viewers are spread over this many locks per drop.
const VIEWER_SHARDS: usize = 64;

/// One journal record: a change, replayed in order on start-up.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum Change {
    Drop {
        record: DropRecord,
    },
    Control {
        drop: DropId,
        entry: ControlEntry,
    },
    Claim {
        claim: Claim,
    },
    Redeem {
        code: ClaimCode,
        at_ms: u64,
    },
    Expire {
        code: ClaimCode,
        at_ms: u64,
    },
    Coupon {
        drop: DropId,
        coupon: String,
        viewer: String,
        code: String,
    },
    Seq {
        drop: DropId,
        next: u64,
    },
    /// A viewer joined a drop's early-access segment.
    Admit {
        drop: DropId,
        viewer: String,
    },
    /// A viewer earned a quest's points.
    Award {
        drop: DropId,
        quest: String,
        viewer: String,
        handle: String,
        rid: String,
        points: u32,
        at_ms: u64,
    },
    /// Fair start: a claim entered in the draw of `sku` at `at_ms`.
    Enter {
        drop: DropId,
        sku: String,
        at_ms: u64,
        entry: super::draw::DrawEntry,
    },
    /// Fair start: the draw of `sku` at `at_ms` was held (its grants are the `Claim`
    /// records before this one); every entry's answer.
    Drawn {
        drop: DropId,
        sku: String,
        at_ms: u64,
        decided: HashMap<String, HashMap<String, super::draw::Decided>>,
    },
    /// A viewer's id became `tombstone` (and its handle [`crate::ERASED_HANDLE`]) in every drop.
    Erase {
        viewer: String,
        tombstone: String,
    },
}

/// Stock and per-viewer counts of one SKU.
#[derive(Debug)]
pub(super) struct SkuLedger {
    pub(super) left: u32,
    pub(super) limit: u32,
    /// Claims granted so far (the next claim's rank).
    pub(super) granted: u32,
    /// Claims per viewer that are held or redeemed (expired ones no longer count).
    pub(super) per_viewer: HashMap<String, u32>,
    /// Fair start: the SKU's draws by their time ([`super::draw`]).
    pub(super) draws: super::draw::Draws,
}

impl SkuLedger {
    /// Why a claim by `viewer` would be refused now, if it would; `raised` is a higher
    /// limit the viewer holds (a pass), never a lower one.
    pub(super) fn refusal(&self, viewer: &str, raised: Option<u32>) -> Option<ClaimReason> {
        let limit = self.limit.max(raised.unwrap_or(0));
        if self.per_viewer.get(viewer).copied().unwrap_or(0) >= limit {
            Some(ClaimReason::LimitReached)
        } else if self.left == 0 {
            Some(ClaimReason::SoldOut)
        } else {
            None
        }
    }

    pub(super) fn take(&mut self, viewer: &str) {
        self.left = self.left.saturating_sub(1);
        self.granted = self.granted.saturating_add(1);
        *self.per_viewer.entry(viewer.to_owned()).or_default() += 1;
    }

    pub(super) fn give_back(&mut self, viewer: &str) {
        self.left = self.left.saturating_add(1);
        if let Some(n) = self.per_viewer.get_mut(viewer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_viewer.remove(viewer);
            }
        }
    }
}

/// Every claim of a drop and the scores they add up to.
#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) claims: HashMap<ClaimCode, Claim>,
    /// Codes in the order granted.
    pub(super) order: Vec<ClaimCode>,
    pub(super) scores: HashMap<String, Score>,
    /// Quest → viewer → the award (quest points are in `scores` too).
    pub(super) awards: HashMap<String, HashMap<String, Award>>,
}

/// A quest a viewer earned: by which request id, and its points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Award {
    pub(super) rid: String,
    pub(super) points: u32,
}

impl Book {
    pub(super) fn add(&mut self, claim: Claim) {
        self.score(
            &claim.viewer_id,
            &claim.handle,
            claim.points,
            claim.created_ms,
        );
        self.order.push(claim.code.clone());
        self.claims.insert(claim.code.clone(), claim);
    }

    /// Adds `points` to a viewer's score (made at `at_ms` if it is the first).
    fn score(&mut self, viewer: &str, handle: &str, points: u32, at_ms: u64) {
        let score = self
            .scores
            .entry(viewer.to_owned())
            .or_insert_with(|| Score {
                viewer_id: viewer.to_owned(),
                handle: handle.to_owned(),
                points: 0,
                first_ms: at_ms,
            });
        score.points = score.points.saturating_add(points);
    }

    /// Records a quest award and adds its points.
    pub(super) fn award(
        &mut self,
        quest: &str,
        viewer: &str,
        handle: &str,
        award: Award,
        at_ms: u64,
    ) {
        self.score(viewer, handle, award.points, at_ms);
        self.awards
            .entry(quest.to_owned())
            .or_default()
            .insert(viewer.to_owned(), award);
    }

    /// An expired hold's points leave its viewer's score (see [`dropwire_core::claim`]).
    pub(super) fn forfeit(&mut self, viewer: &str, points: u32) {
        if let Some(score) = self.scores.get_mut(viewer) {
            score.points = score.points.saturating_sub(points);
        }
    }
}

/// What one viewer asked for: the answer to each request id.
#[derive(Debug, Default)]
pub(super) struct Rids {
    pub(super) granted: HashMap<String, ClaimCode>,
    /// The last [`REFUSED_RIDS_KEPT`] refusals.
    pub(super) refused: VecDeque<(String, ClaimReason)>,
    /// Fair start: rids entered in a draw → (SKU, the draw's time).
    pub(super) entered: HashMap<String, (String, u64)>,
}

/// The earlier answer to a request id.
#[derive(Debug)]
pub(super) enum Answered {
    Granted(ClaimCode),
    Refused(ClaimReason),
}

impl Rids {
    pub(super) fn answered(&self, rid: &str) -> Option<Answered> {
        if let Some(code) = self.granted.get(rid) {
            return Some(Answered::Granted(code.clone()));
        }
        self.refused
            .iter()
            .find(|(r, _)| r == rid)
            .map(|(_, reason)| Answered::Refused(*reason))
    }

    pub(super) fn refuse(&mut self, rid: &str, reason: ClaimReason) {
        while self.refused.len() >= REFUSED_RIDS_KEPT {
            self.refused.pop_front();
        }
        self.refused.push_back((rid.to_owned(), reason));
    }
}

/// Everything about one drop.
#[derive(Debug)]
pub(super) struct DropSlot {
    pub(super) record: Mutex<DropRecord>,
    pub(super) skus: HashMap<String, Mutex<SkuLedger>>,
    pub(super) book: Mutex<Book>,
    pub(super) viewers: Vec<Mutex<HashMap<String, Rids>>>,
    hasher: RandomState,
    /// Held claims by deadline (see [`super::index::DueIndex`]).
    pub(super) holds: Mutex<Holds>,
    /// Coupon → viewer → code.
    pub(super) coupons: Mutex<HashMap<String, HashMap<String, String>>>,
    /// The next broadcast sequence number to hand out.
    pub(super) seq_next: Mutex<u64>,
    /// The viewers of the drop's early-access segment.
    pub(super) members: Mutex<HashSet<String>>,
    /// Counts the changes made to the drop (a snapshot archives a drop only if none was
    /// made since it copied it).
    version: AtomicU64,
}

pub(super) use crate::sync::lock;

impl DropSlot {
    pub(super) fn new(record: DropRecord) -> Self {
        let skus = record
            .spec
            .inventory
            .iter()
            .map(|i| {
                let ledger = SkuLedger {
                    left: i.stock,
                    limit: i.per_viewer_limit,
                    granted: 0,
                    per_viewer: HashMap::new(),
                    draws: Default::default(),
                };
                (i.sku.clone(), Mutex::new(ledger))
            })
            .collect();
        DropSlot {
            record: Mutex::new(record),
            skus,
            book: Mutex::default(),
            viewers: (0..VIEWER_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            holds: Mutex::default(),
            coupons: Mutex::default(),
            seq_next: Mutex::new(1),
            members: Mutex::default(),
            version: AtomicU64::new(0),
        }
    }

    /// Notes a change (call it under the gate, with the change).
    pub(super) fn touch(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The lock over `viewer`'s request ids (and so over its claims: one at a time).
    pub(super) fn viewers(&self, viewer: &str) -> MutexGuard<'_, HashMap<String, Rids>> {
        let shard = self.hasher.hash_one(viewer) as usize % self.viewers.len();
        lock(&self.viewers[shard])
    }

    pub(super) fn hold_s(&self) -> u32 {
        lock(&self.record).spec.hold_s
    }

    /// Gives an expired claim's unit back to its SKU.
    pub(super) fn give_back(&self, claim: &Claim) {
        if let Some(sku) = self.skus.get(&claim.sku) {
            lock(sku).give_back(&claim.viewer_id);
        }
    }
}

/// Moves a claim to `to` (redeemed or expired) at `at_ms`.
pub(super) fn mark(claim: &mut Claim, to: ClaimState, at_ms: u64) {
    claim.state = to;
    match to {
        ClaimState::Redeemed => claim.redeemed_ms = Some(at_ms),
        ClaimState::Expired => claim.expired_ms = Some(at_ms),
        ClaimState::Held => {}
    }
}
