//! A drop's whole state as plain data ([`DropImage`]), as snapshots and archived drops hold
//! it, and the answers read from a drop's state (its claims, its figures) whether the drop
//! is in memory or read back from the archive.
//!
//! An image holds everything a [`DropSlot`] does — the record with its control log, each
//! SKU's ledger, every claim in the order granted, the scores, each viewer's answered
//! request ids (granted and the last refused), the coupons handed out, the next sequence
//! number and the early-access segment — so a drop rebuilt from its image answers every
//! `Store` method exactly as before.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use dropwire_core::claim::Score;
use dropwire_core::protocol::StockItem;
use dropwire_core::timeline::{DropState, TimelineView};
use dropwire_core::{Claim, ClaimCode, ClaimReason, ClaimState, DropRecord};
use serde::{Deserialize, Serialize};

use super::book::{Award, Book, DropSlot, Rids, lock};
use crate::DropFigures;

/// A drop's state as data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DropImage {
    pub(super) record: DropRecord,
    pub(super) body: ImageBody,
}

/// Everything of a drop but its record (an archived drop keeps the two apart, so that
/// listing drops reads the records alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ImageBody {
    skus: Vec<SkuImage>,
    /// In the order granted.
    claims: Vec<Claim>,
    scores: Vec<Score>,
    /// Quest → viewer → award.
    #[serde(default)]
    awards: HashMap<String, HashMap<String, Award>>,
    viewers: Vec<ViewerImage>,
    /// Coupon → viewer → code.
    coupons: HashMap<String, HashMap<String, String>>,
    seq_next: u64,
    members: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SkuImage {
    sku: String,
    left: u32,
    limit: u32,
    granted: u32,
    per_viewer: HashMap<String, u32>,
    /// Fair start: the SKU's draws (entries and answers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    draws: super::draw::Draws,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ViewerImage {
    viewer: String,
    granted: HashMap<String, ClaimCode>,
    refused: Vec<(String, ClaimReason)>,
    /// Fair start: entered rids → (SKU, draw time).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    entered: HashMap<String, (String, u64)>,
}

impl DropImage {
    /// Every claim code and viewer id the drop holds (for the archive's index).
    pub(super) fn keys(&self) -> (Vec<&ClaimCode>, HashSet<&str>) {
        let b = &self.body;
        let codes = b.claims.iter().map(|c| &c.code).collect();
        let mut viewers: HashSet<&str> = HashSet::new();
        viewers.extend(b.claims.iter().map(|c| c.viewer_id.as_str()));
        viewers.extend(b.scores.iter().map(|s| s.viewer_id.as_str()));
        viewers.extend(b.viewers.iter().map(|v| v.viewer.as_str()));
        viewers.extend(b.members.iter().map(String::as_str));
        for sku in &b.skus {
            viewers.extend(sku.per_viewer.keys().map(String::as_str));
            for draw in sku.draws.values() {
                viewers.extend(draw.entries.iter().map(|e| e.viewer.as_str()));
            }
        }
        for given in b.awards.values() {
            viewers.extend(given.keys().map(String::as_str));
        }
        for given in b.coupons.values() {
            viewers.extend(given.keys().map(String::as_str));
        }
        (codes, viewers)
    }

    /// The latest time the drop's state mentions (the store's clock starts there).
    pub(super) fn latest_ms(&self) -> u64 {
        let log = self.record.log.iter().map(|e| e.at_ms);
        let claims = self.body.claims.iter().map(|c| {
            c.created_ms
                .max(c.redeemed_ms.unwrap_or(0))
                .max(c.expired_ms.unwrap_or(0))
        });
        log.chain(claims).max().unwrap_or(0)
    }
}

impl DropSlot {
    /// A copy of the drop's state (taken under the gate, so no change is half applied).
    pub(super) fn image(&self) -> DropImage {
        let record = lock(&self.record).clone();
        let mut skus: Vec<SkuImage> = self
            .skus
            .iter()
            .map(|(sku, ledger)| {
                let l = lock(ledger);
                SkuImage {
                    sku: sku.clone(),
                    left: l.left,
                    limit: l.limit,
                    granted: l.granted,
                    per_viewer: l.per_viewer.clone(),
                    draws: l.draws.clone(),
                }
            })
            .collect();
        skus.sort_by(|a, b| a.sku.cmp(&b.sku));
        let (claims, scores, awards) = {
            let book = lock(&self.book);
            let claims = book
                .order
                .iter()
                .filter_map(|c| book.claims.get(c).cloned())
                .collect();
            let scores = book.scores.values().cloned().collect();
            (claims, scores, book.awards.clone())
        };
        let mut viewers = Vec::new();
        for shard in &self.viewers {
            for (viewer, rids) in lock(shard).iter() {
                viewers.push(ViewerImage {
                    viewer: viewer.clone(),
                    granted: rids.granted.clone(),
                    refused: rids.refused.iter().cloned().collect(),
                    entered: rids.entered.clone(),
                });
            }
        }
        DropImage {
            record,
            body: ImageBody {
                skus,
                claims,
                scores,
                awards,
                viewers,
                coupons: lock(&self.coupons).clone(),
                seq_next: *lock(&self.seq_next),
                members: lock(&self.members).iter().cloned().collect(),
            },
        }
    }

    /// The drop rebuilt from its image (its holds not yet entered in the store's index).
    pub(super) fn from_image(image: DropImage) -> DropSlot {
        let slot = DropSlot::new(image.record);
        let b = image.body;
        for s in b.skus {
            if let Some(ledger) = slot.skus.get(&s.sku) {
                let mut l = lock(ledger);
                l.left = s.left;
                l.limit = s.limit;
                l.granted = s.granted;
                l.per_viewer = s.per_viewer;
                l.draws = s.draws;
            }
        }
        {
            let mut book = lock(&slot.book);
            let Book {
                claims,
                order,
                scores,
                awards,
            } = &mut *book;
            *awards = b.awards;
            let mut holds = lock(&slot.holds);
            for claim in b.claims {
                if claim.state == ClaimState::Held {
                    holds.set.insert((claim.hold_until_ms, claim.code.clone()));
                }
                order.push(claim.code.clone());
                claims.insert(claim.code.clone(), claim);
            }
            for score in b.scores {
                scores.insert(score.viewer_id.clone(), score);
            }
        }
        for v in b.viewers {
            let rids = Rids {
                granted: v.granted,
                refused: VecDeque::from(v.refused),
                entered: v.entered,
            };
            slot.viewers(&v.viewer).insert(v.viewer, rids);
        }
        *lock(&slot.coupons) = b.coupons;
        *lock(&slot.seq_next) = b.seq_next;
        *lock(&slot.members) = b.members.into_iter().collect();
        slot
    }

    /// Every claim of the drop, in the order granted.
    pub(super) fn claims_in_order(&self) -> Vec<Claim> {
        let book = lock(&self.book);
        book.order
            .iter()
            .filter_map(|c| book.claims.get(c).cloned())
            .collect()
    }

    /// Stock left, claims by state and the leaderboard.
    pub(super) fn figures(&self) -> DropFigures {
        let inventory: Vec<String> = lock(&self.record)
            .spec
            .inventory
            .iter()
            .map(|i| i.sku.clone())
            .collect();
        let stock = inventory
            .into_iter()
            .map(|sku| {
                let left = self.skus.get(&sku).map_or(0, |l| lock(l).left);
                StockItem { sku, left }
            })
            .collect();
        let book = lock(&self.book);
        let mut f = DropFigures::tally(stock, book.claims.values(), book.scores.values());
        f.awards = book.awards.values().map(|q| q.len() as u64).sum();
        f
    }

    /// Every claim code of the drop.
    pub(super) fn codes(&self) -> Vec<ClaimCode> {
        lock(&self.book).order.clone()
    }

    /// Whether nothing about the drop can change by itself any more: closed at `now_ms`,
    /// with no hold left that could still be redeemed or expire.
    pub(super) fn settled(&self, now_ms: u64) -> bool {
        let closed = {
            let record = lock(&self.record);
            TimelineView::compute(&record.spec.script, &record.log, now_ms).state
                == DropState::Closed
        };
        closed
            && lock(&self.book)
                .claims
                .values()
                .all(|c| c.state != ClaimState::Held)
    }
}
