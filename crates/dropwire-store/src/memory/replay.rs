//! Start-up: rebuilding the store from its journal, one change at a time, in order.

use std::sync::Arc;

use dropwire_core::{ClaimCode, ClaimState};

use super::MemoryStore;
use super::book::{Change, DropSlot, lock, mark};

impl MemoryStore {
    /// Applies one journaled change. A change about a drop or claim the journal never
    /// created cannot come from this store; it is skipped with a warning.
    pub(super) fn replay(&self, change: Change) {
        match change {
            Change::Drop { record } => {
                let mut drops = self.inner.drops.write().unwrap_or_else(|p| p.into_inner());
                drops.insert(record.id.clone(), Arc::new(DropSlot::new(record)));
            }
            Change::Control { drop, entry } => {
                if let Some(slot) = self.replayed_slot(&drop) {
                    lock(&slot.record).log.push(entry);
                }
            }
            Change::Claim { claim } => {
                let Some(slot) = self.replayed_slot(&claim.drop_id) else {
                    return;
                };
                if let Some(sku) = slot.skus.get(&claim.sku) {
                    let mut ledger = lock(sku);
                    ledger.take(&claim.viewer_id);
                    ledger.granted = ledger.granted.max(claim.rank.saturating_add(1));
                }
                slot.viewers(&claim.viewer_id)
                    .entry(claim.viewer_id.clone())
                    .or_default()
                    .granted
                    .insert(claim.rid.clone(), claim.code.clone());
                self.inner
                    .codes
                    .insert(claim.code.clone(), claim.drop_id.clone());
                if claim.state == ClaimState::Held {
                    lock(&slot.holds).insert((claim.hold_until_ms, claim.code.clone()));
                }
                lock(&slot.book).add(claim);
            }
            Change::Redeem { code, at_ms } => {
                self.replay_settle(&code, ClaimState::Redeemed, at_ms)
            }
            Change::Expire { code, at_ms } => self.replay_settle(&code, ClaimState::Expired, at_ms),
            Change::Coupon {
                drop,
                coupon,
                viewer,
                code,
            } => {
                if let Some(slot) = self.replayed_slot(&drop) {
                    lock(&slot.coupons)
                        .entry(coupon)
                        .or_default()
                        .insert(viewer, code);
                }
            }
            Change::Admit { drop, viewer } => {
                if let Some(slot) = self.replayed_slot(&drop) {
                    lock(&slot.members).insert(viewer);
                }
            }
            Change::Erase { viewer, tombstone } => self.replay_erase(&viewer, &tombstone),
            Change::Seq { drop, next } => {
                if let Some(slot) = self.replayed_slot(&drop) {
                    let mut n = lock(&slot.seq_next);
                    *n = (*n).max(next);
                }
            }
        }
    }

    fn replayed_slot(&self, id: &dropwire_core::DropId) -> Option<Arc<DropSlot>> {
        let slot = self.slot(id).ok();
        if slot.is_none() {
            tracing::warn!(drop = %id, "journal: a change to a drop it never created; skipped");
        }
        slot
    }

    fn replay_settle(&self, code: &ClaimCode, to: ClaimState, at_ms: u64) {
        let Some(slot) = self
            .inner
            .codes
            .get(code)
            .and_then(|d| self.replayed_slot(&d))
        else {
            tracing::warn!(%code, "journal: a change to a claim it never granted; skipped");
            return;
        };
        let claim = {
            let mut book = lock(&slot.book);
            let Some(claim) = book.claims.get_mut(code) else {
                return;
            };
            if claim.state != ClaimState::Held {
                return;
            }
            mark(claim, to, at_ms);
            lock(&slot.holds).remove(&(claim.hold_until_ms, code.clone()));
            claim.clone()
        };
        if to == ClaimState::Expired {
            slot.give_back(&claim);
        }
    }
}
