//! `MemoryStore`: the embedded default. State lives in memory, locked per drop, per SKU and
//! per viewer (never one global lock on the claim path, never a lock across `.await`);
//! every change is journaled ([`crate::journal`]) and durable before the caller is
//! answered. Opening replays the journal.
//!
//! A claim takes its viewer's lock (so one viewer's requests run one at a time and a
//! retried rid always finds the first answer), then its SKU's lock, where stock and the
//! per-viewer limit are checked, the record is queued to the journal and the claim is
//! applied. The journal's order is therefore the order in which each SKU granted. Only
//! after every lock is released does the caller wait for the group commit.
//!
//! If the journal cannot take a record (queue full: [`StoreError::Busy`]; a failed write:
//! [`StoreError::Failed`]) the change is refused before anything is applied. A change
//! applied in memory whose write then fails answers `Failed` (it may or may not survive a
//! restart), and from then on every write is refused and [`Store::ping`] fails.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use dropwire_core::claim::{claim_points, leaderboard};
use dropwire_core::protocol::StockItem;
use dropwire_core::{
    Claim, ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlEntry, DropId, DropRecord,
};

use crate::journal::{Journal, Pending};
use crate::{
    ClaimRequest, CouponOutcome, CouponRequest, DropFigures, Store, StoreError, new_claim_code,
};
use book::{Answered, Change, DropSlot, lock, mark};

mod book;
mod replay;
#[cfg(test)]
mod tests;
mod viewers;

/// How to open a [`MemoryStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStoreConfig {
    /// Where the journal lives (created if missing); `None` keeps everything in memory
    /// only, with nothing written anywhere (benchmarks, throwaway tests).
    pub data_dir: Option<PathBuf>,
    /// fsync each group commit. Turn off only to measure what fsync costs: without it a
    /// power loss may lose changes that were reported done.
    pub fsync: bool,
}

/// Claim code → drop, spread over a few locks.
#[derive(Debug)]
struct CodeIndex {
    shards: Vec<RwLock<HashMap<ClaimCode, DropId>>>,
    hasher: RandomState,
}

impl CodeIndex {
    fn new() -> Self {
        CodeIndex {
            shards: (0..16).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, code: &ClaimCode) -> &RwLock<HashMap<ClaimCode, DropId>> {
        &self.shards[self.hasher.hash_one(code) as usize % self.shards.len()]
    }

    fn insert(&self, code: ClaimCode, drop: DropId) {
        let mut shard = self.shard(&code).write().unwrap_or_else(|p| p.into_inner());
        shard.insert(code, drop);
    }

    fn get(&self, code: &ClaimCode) -> Option<DropId> {
        let shard = self.shard(code).read().unwrap_or_else(|p| p.into_inner());
        shard.get(code).cloned()
    }
}

#[derive(Debug)]
struct Inner {
    drops: RwLock<HashMap<DropId, Arc<DropSlot>>>,
    codes: CodeIndex,
    journal: Option<Journal>,
}

/// The embedded store. Cheap to clone (all clones share the same state).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let drops = self.inner.drops.read().map_or(0, |d| d.len());
        f.debug_struct("MemoryStore")
            .field("drops", &drops)
            .field("journal", &self.inner.journal.is_some())
            .finish()
    }
}

/// What settling a claim found.
// Matched at once by the caller: boxing the claim would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Settled {
    Done(Claim, Option<Pending>),
    NotHeld(ClaimState),
    Missing,
}

impl MemoryStore {
    /// Opens the store, replaying the journal in `data_dir` if there is one (a torn last
    /// record is cut off; damage in the middle is [`StoreError::Corrupt`]).
    pub fn open(config: MemoryStoreConfig) -> Result<MemoryStore, StoreError> {
        let Some(dir) = &config.data_dir else {
            return Ok(MemoryStore::with_journal(None));
        };
        let (journal, changes) = Journal::open::<Change>(dir, config.fsync)?;
        let store = MemoryStore::with_journal(Some(journal));
        let replayed = changes.len();
        for change in changes {
            store.replay(change);
        }
        tracing::info!(records = replayed, dir = %dir.display(), "journal replayed");
        Ok(store)
    }

    fn with_journal(journal: Option<Journal>) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                drops: RwLock::default(),
                codes: CodeIndex::new(),
                journal,
            }),
        }
    }

    fn slot(&self, id: &DropId) -> Result<Arc<DropSlot>, StoreError> {
        let drops = self.inner.drops.read().unwrap_or_else(|p| p.into_inner());
        drops
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchDrop(id.clone()))
    }

    fn slots(&self) -> Vec<Arc<DropSlot>> {
        let drops = self.inner.drops.read().unwrap_or_else(|p| p.into_inner());
        drops.values().cloned().collect()
    }

    /// Queues a change (call it under the lock that orders it, before applying it).
    fn journal(&self, change: &Change) -> Result<Option<Pending>, StoreError> {
        match &self.inner.journal {
            Some(j) => j.append(change).map(Some),
            None => Ok(None),
        }
    }

    /// Waits until everything queued so far is durable (for answers repeating a change).
    async fn settled_so_far(&self) -> Result<(), StoreError> {
        let barrier = match &self.inner.journal {
            Some(j) => Some(j.barrier()?),
            None => None,
        };
        Self::durable(barrier).await
    }

    async fn durable(pending: Option<Pending>) -> Result<(), StoreError> {
        match pending {
            Some(p) => p.durable().await,
            None => Ok(()),
        }
    }

    /// Moves a held claim to `to` (journaled); an expired claim's unit goes back to stock.
    fn settle(
        &self,
        slot: &DropSlot,
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
            mark(claim, to, now_ms);
            lock(&slot.holds).remove(&(claim.hold_until_ms, code.clone()));
            (claim.clone(), pending)
        };
        if to == ClaimState::Expired {
            slot.give_back(&claim.0);
        }
        Ok(Settled::Done(claim.0, claim.1))
    }

    /// Claims under the viewer's lock; `Err(code)` when the rid was granted before.
    fn claim_locked(
        &self,
        slot: &DropSlot,
        req: &ClaimRequest,
    ) -> Result<Result<(ClaimOutcome, Option<Pending>), ClaimCode>, StoreError> {
        let mut viewers = slot.viewers(&req.viewer_id);
        let rids = viewers.entry(req.viewer_id.clone()).or_default();
        match rids.answered(&req.rid) {
            Some(Answered::Granted(code)) => return Ok(Err(code)),
            Some(Answered::Refused(reason)) => {
                return Ok(Ok((ClaimOutcome::Refused(reason), None)));
            }
            None => {}
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
        if let Some(reason) = ledger.refusal(&req.viewer_id) {
            drop(ledger);
            rids.refuse(&req.rid, reason);
            return Ok(Ok((ClaimOutcome::Refused(reason), None)));
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
        let pending = self.journal(&Change::Claim {
            claim: claim.clone(),
        })?;
        ledger.take(&req.viewer_id);
        rids.granted.insert(req.rid.clone(), claim.code.clone());
        self.inner
            .codes
            .insert(claim.code.clone(), claim.drop_id.clone());
        lock(&slot.book).add(claim.clone());
        lock(&slot.holds).insert((claim.hold_until_ms, claim.code.clone()));
        Ok(Ok((ClaimOutcome::Granted(claim), pending)))
    }

    /// Pops the holds of `slot` due at `now_ms` and expires them; `false` if the journal
    /// was busy (the rest stay due for the next sweep).
    fn expire_slot(
        &self,
        slot: &DropSlot,
        now_ms: u64,
        expired: &mut Vec<Claim>,
        pendings: &mut Vec<Option<Pending>>,
    ) -> Result<bool, StoreError> {
        let due: Vec<(u64, ClaimCode)> = {
            let mut holds = lock(&slot.holds);
            let mut due = Vec::new();
            while holds.first().is_some_and(|(until, _)| *until <= now_ms) {
                due.extend(holds.pop_first());
            }
            due
        };
        for (i, (_, code)) in due.iter().enumerate() {
            match self.settle(slot, code, ClaimState::Expired, now_ms) {
                Ok(Settled::Done(claim, pending)) => {
                    expired.push(claim);
                    pendings.push(pending);
                }
                Ok(Settled::NotHeld(_) | Settled::Missing) => {}
                Err(e) => {
                    lock(&slot.holds).extend(due[i..].iter().cloned());
                    return match e {
                        StoreError::Busy => Ok(false),
                        e => Err(e),
                    };
                }
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_drop(&self, record: DropRecord) -> Result<(), StoreError> {
        let pending = {
            let mut drops = self.inner.drops.write().unwrap_or_else(|p| p.into_inner());
            if drops.contains_key(&record.id) {
                return Err(StoreError::AlreadyExists(record.id));
            }
            let pending = self.journal(&Change::Drop {
                record: record.clone(),
            })?;
            drops.insert(record.id.clone(), Arc::new(DropSlot::new(record)));
            pending
        };
        Self::durable(pending).await
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        match self.slot(id) {
            Ok(slot) => Ok(Some(lock(&slot.record).clone())),
            Err(StoreError::NoSuchDrop(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        let mut records: Vec<DropRecord> = self
            .slots()
            .iter()
            .map(|s| lock(&s.record).clone())
            .collect();
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
        let slot = self.slot(id)?;
        let (pending, log) = {
            let mut record = lock(&slot.record);
            if record.log.len() != expected_len {
                return Err(StoreError::Conflict);
            }
            let pending = self.journal(&Change::Control {
                drop: id.clone(),
                entry: entry.clone(),
            })?;
            record.log.push(entry);
            (pending, record.log.clone())
        };
        Self::durable(pending).await?;
        Ok(log)
    }

    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let slot = self.slot(&req.drop_id)?;
        match self.claim_locked(&slot, &req)? {
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
                    .ok_or_else(|| StoreError::Failed(format!("claim {code} vanished")))
            }
        }
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        let drop = self
            .inner
            .codes
            .get(code)
            .ok_or_else(|| StoreError::NoSuchClaim(code.clone()))?;
        let slot = self.slot(&drop)?;
        let hold_until = lock(&slot.book).claims.get(code).map(|c| c.hold_until_ms);
        // A hold past its deadline is expired on the spot, sweeper or not.
        let to = match hold_until {
            Some(until) if until <= now_ms => ClaimState::Expired,
            _ => ClaimState::Redeemed,
        };
        match self.settle(&slot, code, to, now_ms)? {
            Settled::Missing => Err(StoreError::NoSuchClaim(code.clone())),
            Settled::NotHeld(state) => Err(StoreError::NotHeld {
                code: code.clone(),
                state,
                drop: drop.clone(),
            }),
            Settled::Done(claim, pending) => {
                Self::durable(pending).await?;
                match claim.state {
                    ClaimState::Redeemed => Ok(claim),
                    state => Err(StoreError::NotHeld {
                        code: code.clone(),
                        state,
                        drop: drop.clone(),
                    }),
                }
            }
        }
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        let mut expired = Vec::new();
        let mut pendings = Vec::new();
        for slot in self.slots() {
            if !self.expire_slot(&slot, now_ms, &mut expired, &mut pendings)? {
                break;
            }
        }
        for p in pendings {
            Self::durable(p).await?;
        }
        Ok(expired)
    }

    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError> {
        let slot = self.slot(id)?;
        let book = lock(&slot.book);
        Ok(book
            .order
            .iter()
            .filter_map(|c| book.claims.get(c).cloned())
            .collect())
    }

    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError> {
        let slot = self.slot(id)?;
        let inventory: Vec<String> = lock(&slot.record)
            .spec
            .inventory
            .iter()
            .map(|i| i.sku.clone())
            .collect();
        let stock = inventory
            .into_iter()
            .map(|sku| {
                let left = slot.skus.get(&sku).map_or(0, |l| lock(l).left);
                StockItem { sku, left }
            })
            .collect();
        let book = lock(&slot.book);
        let mut f = DropFigures {
            stock,
            ..DropFigures::default()
        };
        for claim in book.claims.values() {
            match claim.state {
                ClaimState::Held => f.held += 1,
                ClaimState::Redeemed => f.redeemed += 1,
                ClaimState::Expired => f.expired += 1,
            }
        }
        // Every viewer with a claim has a score, and only they do.
        f.claimers = book.scores.len() as u64;
        f.leaderboard = leaderboard(book.scores.values(), 10);
        Ok(f)
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        let slot = self.slot(&req.drop_id)?;
        let (code, pending) = {
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

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        let slot = self.slot(id)?;
        let (start, pending) = {
            let mut next = lock(&slot.seq_next);
            let start = *next;
            let end = start
                .checked_add(n)
                .ok_or_else(|| StoreError::Failed("sequence numbers exhausted".into()))?;
            let pending = self.journal(&Change::Seq {
                drop: id.clone(),
                next: end,
            })?;
            *next = end;
            (start, pending)
        };
        Self::durable(pending).await?;
        Ok(start)
    }

    async fn admit(&self, drop: &DropId, viewer_id: &str) -> Result<(), StoreError> {
        let slot = self.slot(drop)?;
        self.admit_viewer(&slot, viewer_id).await
    }

    async fn erase_viewer(&self, viewer_id: &str, tombstone: &str) -> Result<u64, StoreError> {
        self.erase_everywhere(viewer_id, tombstone).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match &self.inner.journal {
            Some(j) if !j.healthy() => Err(StoreError::Failed("a journal write failed".into())),
            _ => Ok(()),
        }
    }
}
