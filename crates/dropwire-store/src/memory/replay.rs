//! Start-up: replaying the journal written after the snapshot, one change at a time, in
//! order, on top of the state the snapshot holds. A change to an archived drop loads it
//! back into memory first, as the same change did when it was made.

use std::sync::Arc;

use dropwire_core::{ClaimCode, ClaimState, DropId};

use super::book::{Change, DropSlot, lock, mark};
use super::{Entry, MemoryStore, Retry};
use crate::StoreError;

impl MemoryStore {
    /// Applies one journaled change. A change about a drop or claim the journal never
    /// created cannot come from this store; it is skipped with a warning.
    pub(super) fn replay(&self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Drop { record } => {
                self.tick(record.created_ms);
                let mut drops = self.drops_write();
                drops.insert(
                    record.id.clone(),
                    Entry::Resident(Arc::new(DropSlot::new(record))),
                );
            }
            Change::Control { drop, entry } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    self.tick(entry.at_ms);
                    lock(&slot.record).log.push(entry);
                }
            }
            Change::Claim { claim } => {
                let Some(slot) = self.replayed_slot(&claim.drop_id)? else {
                    return Ok(());
                };
                self.tick(claim.created_ms);
                if let Some(sku) = slot.skus.get(&claim.sku) {
                    let mut ledger = lock(sku);
                    ledger.take(&claim.viewer_id);
                    ledger.granted = ledger.granted.max(claim.rank.saturating_add(1));
                    // A grant of a draw (dated at its time) whose end may not follow.
                    if let Some(draw) = ledger.draws.get_mut(&claim.created_ms) {
                        draw.note_grant(&claim);
                    }
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
                    self.inner.due.hold(
                        &slot,
                        &claim.drop_id,
                        claim.hold_until_ms,
                        claim.code.clone(),
                    );
                }
                lock(&slot.book).add(claim);
            }
            Change::Redeem { code, at_ms } => {
                self.replay_settle(&code, ClaimState::Redeemed, at_ms)?
            }
            Change::Expire { code, at_ms } => {
                self.replay_settle(&code, ClaimState::Expired, at_ms)?
            }
            Change::Coupon {
                drop,
                coupon,
                viewer,
                code,
            } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    lock(&slot.coupons)
                        .entry(coupon)
                        .or_default()
                        .insert(viewer, code);
                }
            }
            Change::Admit { drop, viewer } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    lock(&slot.members).insert(viewer);
                }
            }
            Change::Award {
                drop,
                quest,
                viewer,
                handle,
                rid,
                points,
                at_ms,
            } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    self.tick(at_ms);
                    let award = super::book::Award { rid, points };
                    lock(&slot.book).award(&quest, &viewer, &handle, award, at_ms);
                }
            }
            Change::Enter {
                drop,
                sku,
                at_ms,
                entry,
            } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    slot.viewers(&entry.viewer)
                        .entry(entry.viewer.clone())
                        .or_default()
                        .entered
                        .insert(entry.rid.clone(), (sku.clone(), at_ms));
                    if let Some(ledger) = slot.skus.get(&sku) {
                        super::draw::replay_enter(&mut lock(ledger), at_ms, entry);
                    }
                }
            }
            Change::Drawn {
                drop,
                sku,
                at_ms,
                decided,
            } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    self.tick(at_ms);
                    if let Some(ledger) = slot.skus.get(&sku) {
                        super::draw::replay_drawn(&mut lock(ledger), at_ms, decided);
                    }
                }
            }
            Change::Erase { viewer, tombstone } => self.replay_erase(&viewer, &tombstone)?,
            Change::Seq { drop, next } => {
                if let Some(slot) = self.replayed_slot(&drop)? {
                    let mut n = lock(&slot.seq_next);
                    *n = (*n).max(next);
                }
            }
        }
        Ok(())
    }

    /// The drop a change is about, in memory (loaded back from the archive if need be).
    fn replayed_slot(&self, id: &DropId) -> Result<Option<Arc<DropSlot>>, StoreError> {
        match self.resident(id) {
            Ok((_gate, slot)) => Ok(Some(slot)),
            Err(StoreError::NoSuchDrop(_)) => {
                tracing::warn!(drop = %id, "journal: a change to a drop it never created; skipped");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The drop of a claim, by its code: in memory, else in the archive.
    fn drop_of(&self, code: &ClaimCode) -> Result<Option<DropId>, StoreError> {
        if let Some(drop) = self.inner.codes.get(code) {
            // During replay no drop leaves memory: the entry is current.
            return Ok(Some(drop));
        }
        loop {
            match self.archived_claim(code) {
                Ok(found) => return Ok(found.map(|c| c.drop_id)),
                Err(Retry::Again) => {}
                Err(Retry::Fail(e)) => return Err(e),
            }
        }
    }

    fn replay_settle(
        &self,
        code: &ClaimCode,
        to: ClaimState,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let found = match self.drop_of(code)? {
            Some(drop) => self.replayed_slot(&drop)?.map(|slot| (drop, slot)),
            None => None,
        };
        let Some((drop, slot)) = found else {
            tracing::warn!(%code, "journal: a change to a claim it never granted; skipped");
            return Ok(());
        };
        self.tick(at_ms);
        let claim = {
            let mut book = lock(&slot.book);
            let Some(claim) = book.claims.get_mut(code) else {
                return Ok(());
            };
            if claim.state != ClaimState::Held {
                return Ok(());
            }
            mark(claim, to, at_ms);
            self.inner
                .due
                .release(&slot, &drop, claim.hold_until_ms, code);
            let claim = claim.clone();
            if to == ClaimState::Expired {
                book.forfeit(&claim.viewer_id, claim.points);
            }
            claim
        };
        if to == ClaimState::Expired {
            slot.give_back(&claim);
        }
        Ok(())
    }
}
