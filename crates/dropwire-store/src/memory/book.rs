//! The embedded store's state: one slot per drop, a ledger per SKU, the claim book, and
//! the journal record type.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use dropwire_core::claim::Score;
use dropwire_core::{Claim, ClaimCode, ClaimReason, ControlEntry, DropId, DropRecord};
use serde::{Deserialize, Serialize};

/// Refused rids remembered per viewer (granted ones are kept with their claims).
pub(super) const REFUSED_RIDS: usize = 32;

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
}

#[derive(Debug)]
pub(super) struct SkuLedger {
    pub(super) left: u32,
    pub(super) limit: u32,
    pub(super) granted: u32,
    /// Non-expired claims per viewer.
    pub(super) per_viewer: HashMap<String, u32>,
}

#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) claims: HashMap<ClaimCode, Claim>,
    pub(super) order: Vec<ClaimCode>,
    pub(super) scores: HashMap<String, Score>,
    pub(super) granted_rids: HashMap<(String, String), ClaimCode>,
    pub(super) refused_rids: HashMap<String, Vec<(String, ClaimReason)>>,
}

#[derive(Debug)]
pub(super) struct DropSlot {
    pub(super) record: Mutex<DropRecord>,
    pub(super) skus: HashMap<String, Mutex<SkuLedger>>,
    pub(super) book: Mutex<Book>,
    pub(super) coupons: Mutex<HashMap<String, HashMap<String, String>>>,
    pub(super) seq_next: Mutex<u64>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
                };
                (i.sku.clone(), Mutex::new(ledger))
            })
            .collect();
        DropSlot {
            record: Mutex::new(record),
            skus,
            book: Mutex::new(Book::default()),
            coupons: Mutex::default(),
            seq_next: Mutex::new(1),
        }
    }
}

impl Book {
    pub(super) fn add(&mut self, claim: Claim) {
        let score = self
            .scores
            .entry(claim.viewer_id.clone())
            .or_insert_with(|| Score {
                viewer_id: claim.viewer_id.clone(),
                handle: claim.handle.clone(),
                points: 0,
                first_ms: claim.created_ms,
            });
        score.points += claim.points;
        self.granted_rids.insert(
            (claim.viewer_id.clone(), claim.rid.clone()),
            claim.code.clone(),
        );
        self.order.push(claim.code.clone());
        self.claims.insert(claim.code.clone(), claim);
    }

    pub(super) fn refused(&self, viewer: &str, rid: &str) -> Option<ClaimReason> {
        self.refused_rids
            .get(viewer)?
            .iter()
            .find(|(r, _)| r == rid)
            .map(|(_, reason)| *reason)
    }

    pub(super) fn remember_refusal(&mut self, viewer: &str, rid: &str, reason: ClaimReason) {
        let list = self.refused_rids.entry(viewer.to_owned()).or_default();
        if list.len() == REFUSED_RIDS {
            list.remove(0);
        }
        list.push((rid.to_owned(), reason));
    }
}
