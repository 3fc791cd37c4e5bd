//! The [`Store`] methods of the embedded store: each change under the gate (shared) and
//! the locks of its drop, journaled before it is applied; each read from the drop in
//! memory, or from the archive.
//!
//! An archived drop answers reads and repeated answers (a retried rid, a coupon already
//! handed out, a member admitted again, a redeemed code) from its file; anything that
//! would change it loads it back into memory first.

use async_trait::async_trait;
use dropwire_core::claim::claim_points;
use dropwire_core::{
    Claim, ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlEntry, DropId, DropRecord,
};

use super::book::{Answered, Change, DropSlot, lock, mark};
use super::draw::Drawn;
use super::{Entry, MemoryStore, Retry, archive};
use crate::journal::PendingWrite;
use crate::{
    AwardOutcome, ClaimRequest, CouponOutcome, CouponRequest, DropFigures, QuestAward, Store,
    StoreError, new_claim_code,
};

/// What settling a claim found.
// Matched at once by the caller: boxing the claim would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Settled {
    Done(Claim, Option<PendingWrite>),
    NotHeld(ClaimState),
    Missing,
}

/// A claim answered by a rid's earlier grant whose claim is gone (never happens).
fn vanished(code: &ClaimCode) -> StoreError {
    StoreError::Inconsistent(format!("claim {code} vanished"))
}

impl MemoryStore {
    /// Moves a held claim to `to` (journaled); an expired claim's unit goes back to stock.
    /// Call it under the gate.
    fn settle(
        &self,
        slot: &DropSlot,
        drop: &DropId,
        code: &ClaimCode,
        to: ClaimState,
        now_ms: u64,
    ) -> Result<Settled, StoreError> {
        let claim = {
            let mut book = lock(&slot.book);
            let Some(claim) = book.claims.get_mut(code) else {
                return Ok(Settled::Missing);
            };
            if claim.state != ClaimState::Held {
                return Ok(Settled::NotHeld(claim.state));
            }
            let change = match to {
                ClaimState::Redeemed => Change::Redeem {
                    code: code.clone(),
                    at_ms: now_ms,
                },
                _ => Change::Expire {
                    code: code.clone(),
                    at_ms: now_ms,
                },
            };
            let pending = self.journal(&change)?;
            slot.touch();
            mark(claim, to, now_ms);
            self.inner
                .due
                .release(slot, drop, claim.hold_until_ms, code);
            let claim = claim.clone();
            if to == ClaimState::Expired {
                book.forfeit(&claim.viewer_id, claim.points);
            }
            (claim, pending)
        };
        if to == ClaimState::Expired {
            slot.give_back(&claim.0);
        }
        Ok(Settled::Done(claim.0, claim.1))
    }

    /// Claims under the viewer's lock; `Err(code)` when the rid was granted before. Call
    /// it under the gate.
    pub(super) fn claim_locked(
        &self,
        slot: &DropSlot,
        req: &ClaimRequest,
    ) -> Result<Result<(ClaimOutcome, Option<PendingWrite>), ClaimCode>, StoreError> {
        let mut viewers = slot.viewers(&req.viewer_id);
        let rids = viewers.entry(req.viewer_id.clone()).or_default();
        match rids.answered(&req.rid) {
            Some(Answered::Granted(code)) => return Ok(Err(code)),
            Some(Answered::Refused(reason)) => {
                return Ok(Ok((ClaimOutcome::Refused(reason), None)));
            }
            None => {}
        }
        if let Some((sku, at)) = rids.entered.get(&req.rid).cloned() {
            // Entered in a draw: its answer once drawn (drawing it if it is due).
            let Some(ledger) = slot.skus.get(&sku) else {
                return Ok(Ok((ClaimOutcome::Refused(ClaimReason::NotOpen), None)));
            };
            let mut ledger = lock(ledger);
            let asked = ClaimRequest { sku, ..req.clone() };
            let mut drawn = None;
            match self.in_draw(slot, &asked, &mut ledger, Some(at), &mut drawn)? {
                Drawn::Granted(code) => return Ok(Err(code)),
                Drawn::Answer(outcome) => return Ok(Ok((outcome, drawn))),
                Drawn::Serve => {}
            }
        }
        if let Some(reason) = req.refusal {
            // The timeline refused it, and this rid was not decided before: not remembered.
            return Ok(Ok((ClaimOutcome::Refused(reason), None)));
        }
        if req.members_only && !lock(&slot.members).contains(&req.viewer_id) {
            // Early access, and the viewer is not in the segment: not remembered either.
            return Ok(Ok((ClaimOutcome::Refused(ClaimReason::NotOpen), None)));
        }
        let Some(sku) = slot.skus.get(&req.sku) else {
            return Ok(Ok((ClaimOutcome::Refused(ClaimReason::NotOpen), None)));
        };
        let hold_ms = u64::from(slot.hold_s()) * 1000;
        let mut ledger = lock(sku);
        // Fair start: draws that are due first, then a new rid inside a draw's window.
        let mut drawn = None;
        match self.in_draw(slot, req, &mut ledger, None, &mut drawn)? {
            Drawn::Serve => {}
            Drawn::Granted(code) => return Ok(Err(code)),
            Drawn::Answer(outcome) => {
                if let ClaimOutcome::Entered { draw_at_ms } = outcome {
                    rids.entered
                        .insert(req.rid.clone(), (req.sku.clone(), draw_at_ms));
                }
                return Ok(Ok((outcome, drawn)));
            }
        }
        if let Some(reason) = ledger.refusal(&req.viewer_id, req.per_viewer_limit) {
            drop(ledger);
            slot.touch();
            rids.refuse(&req.rid, reason);
            return Ok(Ok((ClaimOutcome::Refused(reason), drawn)));
        }
        let claim = Claim {
            code: new_claim_code()?,
            drop_id: req.drop_id.clone(),
            sku: req.sku.clone(),
            viewer_id: req.viewer_id.clone(),
            handle: req.handle.clone(),
            rid: req.rid.clone(),
            state: ClaimState::Held,
            created_ms: req.now_ms,
            hold_until_ms: req.now_ms.saturating_add(hold_ms),
            redeemed_ms: None,
            expired_ms: None,
            rank: ledger.granted,
            points: claim_points(ledger.granted),
        };
        // Queued while the SKU is locked, so the journal's order is the order granted.
        let pending = self
            .journal(&Change::Claim {
                claim: claim.clone(),
            })?
            .or(drawn);
        slot.touch();
        ledger.take(&req.viewer_id);
        rids.granted.insert(req.rid.clone(), claim.code.clone());
        self.inner
            .codes
            .insert(claim.code.clone(), claim.drop_id.clone());
        self.inner.due.hold(
            slot,
            &claim.drop_id,
            claim.hold_until_ms,
            claim.code.clone(),
        );
        lock(&slot.book).add(claim.clone());
        Ok(Ok((ClaimOutcome::Granted(claim), pending)))
    }

    /// The answer an archived drop gives a claim the timeline refused (what it decided
    /// before for the rid, else the refusal), without loading it back; `None` if the drop
    /// is in memory.
    async fn refused_in_archive(
        &self,
        req: &ClaimRequest,
        reason: ClaimReason,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        let Some(slot) = self.archived(&req.drop_id)? else {
            return Ok(None);
        };
        let answered = slot
            .viewers(&req.viewer_id)
            .get(&req.viewer_id)
            .and_then(|rids| rids.answered(&req.rid));
        Ok(Some(match answered {
            Some(Answered::Granted(code)) => {
                let claim = lock(&slot.book).claims.get(&code).cloned();
                self.settled_so_far().await?;
                ClaimOutcome::Granted(claim.ok_or_else(|| vanished(&code))?)
            }
            Some(Answered::Refused(earlier)) => ClaimOutcome::Refused(earlier),
            None => ClaimOutcome::Refused(reason),
        }))
    }

    /// The drop in memory holding claim `code`, by the code index (whose entries for a drop
    /// that was just archived are stale until the snapshot removes them).
    fn resident_claim(&self, code: &ClaimCode) -> Option<(DropId, std::sync::Arc<DropSlot>)> {
        let drop = self.inner.codes.get(code)?;
        match self.find(&drop) {
            Some(Entry::Resident(slot)) => Some((drop, slot)),
            _ => None,
        }
    }

    /// A drop's record, from memory or from its archived file.
    async fn record_of(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        loop {
            let r = match self.find(id) {
                None => return Ok(None),
                Some(Entry::Resident(slot)) => return Ok(Some(lock(&slot.record).clone())),
                Some(Entry::Archived(r)) => r,
            };
            let cached = lock(&self.inner.cache)
                .iter()
                .find(|(n, _)| *n == r.file)
                .map(|(_, slot)| lock(&slot.record).clone());
            if let Some(record) = cached {
                return Ok(Some(record));
            }
            match archive::read_record(self.archive_dir()?, r.file) {
                Ok(record) => return Ok(Some(record)),
                Err(e) if archive::is_gone(&e) => self.still_there(&r, e)?,
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_drop(&self, record: DropRecord) -> Result<(), StoreError> {
        let pending = {
            let _gate = self.gate();
            let mut drops = self.drops_write();
            if drops.contains_key(&record.id) {
                return Err(StoreError::AlreadyExists(record.id));
            }
            let pending = self.journal(&Change::Drop {
                record: record.clone(),
            })?;
            self.tick(record.created_ms);
            drops.insert(
                record.id.clone(),
                Entry::Resident(std::sync::Arc::new(DropSlot::new(record))),
            );
            pending
        };
        Self::durable(pending).await
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        self.record_of(id).await
    }

    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        let entries: Vec<(DropId, Entry)> = self
            .drops_read()
            .iter()
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect();
        let mut records = Vec::with_capacity(entries.len());
        for (id, entry) in entries {
            match entry {
                Entry::Resident(slot) => records.push(lock(&slot.record).clone()),
                Entry::Archived(_) => records.extend(self.record_of(&id).await?),
            }
        }
        records.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(records)
    }

    async fn append_control(
        &self,
        id: &DropId,
        expected_len: usize,
        entry: ControlEntry,
    ) -> Result<Vec<ControlEntry>, StoreError> {
        let (pending, log) = {
            let (_gate, slot) = self.resident(id)?;
            let mut record = lock(&slot.record);
            if record.log.len() != expected_len {
                return Err(StoreError::Conflict);
            }
            let pending = self.journal(&Change::Control {
                drop: id.clone(),
                entry: entry.clone(),
            })?;
            slot.touch();
            self.tick(entry.at_ms);
            record.log.push(entry);
            (pending, record.log.clone())
        };
        Self::durable(pending).await?;
        Ok(log)
    }

    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.tick(req.now_ms);
        if let Some(reason) = req.refusal
            && let Some(outcome) = self.refused_in_archive(&req, reason).await?
        {
            return Ok(outcome);
        }
        let (answer, slot) = {
            let (_gate, slot) = self.resident(&req.drop_id)?;
            (self.claim_locked(&slot, &req)?, slot)
        };
        match answer {
            // An entry's answer, or a draw's that another claim may have held: once what
            // decided it is surely on disk.
            Ok((outcome, None)) if req.draw_at_ms.is_some() || req.ticket.is_some() => {
                self.settled_so_far().await?;
                Ok(outcome)
            }
            Ok((outcome, pending)) => {
                Self::durable(pending).await?;
                Ok(outcome)
            }
            Err(code) => {
                // A retry: the same claim, once its record is surely on disk.
                let claim = lock(&slot.book).claims.get(&code).cloned();
                self.settled_so_far().await?;
                claim
                    .map(ClaimOutcome::Granted)
                    .ok_or_else(|| vanished(&code))
            }
        }
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        self.tick(now_ms);
        loop {
            let in_memory = {
                let _gate = self.gate();
                match self.resident_claim(code) {
                    None => None,
                    Some((drop, slot)) => {
                        let hold_until = lock(&slot.book).claims.get(code).map(|c| c.hold_until_ms);
                        // A hold past its deadline is expired on the spot, sweeper or not.
                        let to = match hold_until {
                            Some(until) if until <= now_ms => ClaimState::Expired,
                            _ => ClaimState::Redeemed,
                        };
                        let settled = self.settle(&slot, &drop, code, to, now_ms)?;
                        Some((drop, settled))
                    }
                }
            };
            if let Some((drop, settled)) = in_memory {
                return match settled {
                    Settled::Missing => Err(StoreError::NoSuchClaim(code.clone())),
                    Settled::NotHeld(state) => Err(StoreError::NotHeld {
                        code: code.clone(),
                        state,
                        drop,
                    }),
                    Settled::Done(claim, pending) => {
                        Self::durable(pending).await?;
                        match claim.state {
                            ClaimState::Redeemed => Ok(claim),
                            state => Err(StoreError::NotHeld {
                                code: code.clone(),
                                state,
                                drop,
                            }),
                        }
                    }
                };
            }
            match self.archived_claim(code) {
                Ok(Some(claim)) if claim.state != ClaimState::Held => {
                    return Err(StoreError::NotHeld {
                        code: code.clone(),
                        state: claim.state,
                        drop: claim.drop_id,
                    });
                }
                // A drop is archived without holds; if one were there, settle it in memory.
                Ok(Some(claim)) => drop(self.resident(&claim.drop_id)?),
                Ok(None) if self.resident_claim(code).is_some() => {}
                Ok(None) => return Err(StoreError::NoSuchClaim(code.clone())),
                Err(Retry::Again) => {}
                Err(Retry::Fail(e)) => return Err(e),
            }
        }
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        self.tick(now_ms);
        let resident = |id: &DropId| match self.find(id) {
            Some(Entry::Resident(slot)) => Some(slot),
            _ => None,
        };
        let mut due = self.inner.due.take_due(now_ms, resident).into_iter();
        let mut expired = Vec::new();
        let mut pendings = Vec::new();
        while let Some((until, code, drop)) = due.next() {
            let settled = match self.resident(&drop) {
                Ok((_gate, slot)) => self.settle(&slot, &drop, &code, ClaimState::Expired, now_ms),
                Err(StoreError::NoSuchDrop(_)) => continue,
                Err(e) => Err(e),
            };
            match settled {
                Ok(Settled::Done(claim, pending)) => {
                    expired.push(claim);
                    pendings.push(pending);
                }
                Ok(Settled::NotHeld(_) | Settled::Missing) => {}
                Err(e) => {
                    // The rest stay due for the next sweep.
                    for (until, code, drop) in std::iter::once((until, code, drop)).chain(due) {
                        if let Some(slot) = resident(&drop) {
                            self.inner.due.hold(&slot, &drop, until, code);
                        }
                    }
                    match e {
                        StoreError::Busy => break,
                        e => return Err(e),
                    }
                }
            }
        }
        for p in pendings {
            Self::durable(p).await?;
        }
        Ok(expired)
    }

    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError> {
        Ok(self.readable(id)?.claims_in_order())
    }

    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError> {
        Ok(self.readable(id)?.figures())
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        self.tick(req.now_ms);
        if let Some(slot) = self.archived(&req.drop_id)? {
            let known = {
                let coupons = lock(&slot.coupons);
                let given = coupons.get(&req.coupon);
                let code = given.and_then(|g| g.get(&req.viewer_id).cloned());
                (code, given.map_or(0, |g| g.len()))
            };
            match known {
                (Some(code), _) => {
                    self.settled_so_far().await?;
                    return Ok(CouponOutcome::Granted { code });
                }
                (None, n) if n >= req.limit as usize => return Ok(CouponOutcome::SoldOut),
                // A new code: the drop comes back into memory to hand it out.
                (None, _) => {}
            }
        }
        let (code, pending) = {
            let (_gate, slot) = self.resident(&req.drop_id)?;
            let mut coupons = lock(&slot.coupons);
            let given = coupons.entry(req.coupon.clone()).or_default();
            if let Some(code) = given.get(&req.viewer_id) {
                (code.clone(), None)
            } else if given.len() >= req.limit as usize {
                return Ok(CouponOutcome::SoldOut);
            } else {
                let code = new_claim_code()?.to_string();
                let pending = self.journal(&Change::Coupon {
                    drop: req.drop_id.clone(),
                    coupon: req.coupon.clone(),
                    viewer: req.viewer_id.clone(),
                    code: code.clone(),
                })?;
                slot.touch();
                given.insert(req.viewer_id.clone(), code.clone());
                (code, Some(pending))
            }
        };
        match pending {
            Some(pending) => Self::durable(pending).await?,
            // The same code again, once the record that gave it is surely on disk.
            None => self.settled_so_far().await?,
        }
        Ok(CouponOutcome::Granted { code })
    }

    async fn award(&self, award: QuestAward) -> Result<AwardOutcome, StoreError> {
        self.award_quest(award).await
    }

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        let (start, pending) = {
            let (_gate, slot) = self.resident(id)?;
            let mut next = lock(&slot.seq_next);
            let start = *next;
            let end = start
                .checked_add(n)
                .ok_or_else(|| StoreError::Inconsistent("sequence numbers exhausted".into()))?;
            let pending = self.journal(&Change::Seq {
                drop: id.clone(),
                next: end,
            })?;
            slot.touch();
            *next = end;
            (start, pending)
        };
        Self::durable(pending).await?;
        Ok(start)
    }

    async fn admit(&self, drop: &DropId, viewer_id: &str) -> Result<(), StoreError> {
        self.admit_viewer(drop, viewer_id).await
    }

    async fn erase_viewer(&self, viewer_id: &str, tombstone: &str) -> Result<u64, StoreError> {
        self.erase_everywhere(viewer_id, tombstone).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match &self.inner.journal {
            Some(j) => j.check(),
            None => Ok(()),
        }
    }
}
