//! `MemoryStore`: the embedded default. State lives in memory, locked per drop and per
//! SKU (never one global lock on the claim path, never a lock across `.await`); every
//! change is journaled ([`crate::journal`]) and durable before the caller is answered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use dropwire_core::claim::{claim_points, leaderboard};
use dropwire_core::protocol::StockItem;
use dropwire_core::{
    Claim, ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlEntry, DropId, DropRecord,
};

use crate::journal::{Journal, Pending};

mod book;

use crate::{
    ClaimRequest, CouponOutcome, CouponRequest, DropFigures, Store, StoreError, new_claim_code,
};
use book::{Change, DropSlot, lock};

#[derive(Debug, Clone, Default)]
pub struct MemoryStoreConfig {
    /// Where the journal lives; `None` keeps everything in memory only (tests, benchmarks).
    pub data_dir: Option<PathBuf>,
    /// fsync each group commit (turn off only to measure what fsync costs).
    pub fsync: bool,
}

#[derive(Debug, Default)]
struct Inner {
    drops: RwLock<HashMap<DropId, Arc<DropSlot>>>,
    codes: RwLock<HashMap<ClaimCode, DropId>>,
    holds: Mutex<BTreeSet<(u64, ClaimCode)>>,
    journal: Option<Journal>,
}

/// The embedded store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl MemoryStore {
    /// Opens the store, replaying the journal in `data_dir` if there is one.
    pub fn open(config: MemoryStoreConfig) -> Result<MemoryStore, StoreError> {
        let (journal, changes) = match &config.data_dir {
            Some(dir) => {
                let (j, changes) = Journal::open::<Change>(dir, config.fsync)?;
                (Some(j), changes)
            }
            None => (None, Vec::new()),
        };
        let store = MemoryStore {
            inner: Arc::new(Inner {
                journal,
                ..Inner::default()
            }),
        };
        let replayed = changes.len();
        for change in changes {
            store.apply(change);
        }
        if replayed > 0 {
            tracing::info!(records = replayed, "journal replayed");
        }
        Ok(store)
    }

    fn slot(&self, id: &DropId) -> Result<Arc<DropSlot>, StoreError> {
        let drops = self.inner.drops.read().unwrap_or_else(|p| p.into_inner());
        drops
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchDrop(id.clone()))
    }

    fn journal(&self, change: &Change) -> Result<Option<Pending>, StoreError> {
        match &self.inner.journal {
            Some(j) => j.append(change).map(Some),
            None => Ok(None),
        }
    }

    async fn durable(pending: Option<Pending>) -> Result<(), StoreError> {
        match pending {
            Some(p) => p.durable().await,
            None => Ok(()),
        }
    }

    /// Replays one journaled change (start-up only).
    fn apply(&self, change: Change) {
        match change {
            Change::Drop { record } => {
                let mut drops = self.inner.drops.write().unwrap_or_else(|p| p.into_inner());
                drops.insert(record.id.clone(), Arc::new(DropSlot::new(record)));
            }
            Change::Control { drop, entry } => {
                if let Ok(slot) = self.slot(&drop) {
                    lock(&slot.record).log.push(entry);
                }
            }
            Change::Claim { claim } => {
                let Ok(slot) = self.slot(&claim.drop_id) else {
                    return;
                };
                if let Some(sku) = slot.skus.get(&claim.sku) {
                    let mut led = lock(sku);
                    led.left = led.left.saturating_sub(1);
                    led.granted = led.granted.max(claim.rank + 1);
                    *led.per_viewer.entry(claim.viewer_id.clone()).or_default() += 1;
                }
                self.index(&claim);
                lock(&slot.book).add(claim);
            }
            Change::Redeem { code, at_ms } => {
                self.settle(&code, |c| {
                    c.state = ClaimState::Redeemed;
                    c.redeemed_ms = Some(at_ms);
                    false
                });
            }
            Change::Expire { code, at_ms } => {
                self.settle(&code, |c| {
                    c.state = ClaimState::Expired;
                    c.expired_ms = Some(at_ms);
                    true
                });
            }
            Change::Coupon {
                drop,
                coupon,
                viewer,
                code,
            } => {
                if let Ok(slot) = self.slot(&drop) {
                    lock(&slot.coupons)
                        .entry(coupon)
                        .or_default()
                        .insert(viewer, code);
                }
            }
            Change::Seq { drop, next } => {
                if let Ok(slot) = self.slot(&drop) {
                    let mut n = lock(&slot.seq_next);
                    *n = (*n).max(next);
                }
            }
        }
    }

    fn index(&self, claim: &Claim) {
        self.inner
            .codes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(claim.code.clone(), claim.drop_id.clone());
        if claim.state == ClaimState::Held {
            lock(&self.inner.holds).insert((claim.hold_until_ms, claim.code.clone()));
        }
    }

    /// Replay helper: changes a held claim; `returns_unit` gives its unit back to stock.
    fn settle(&self, code: &ClaimCode, change: impl FnOnce(&mut Claim) -> bool) {
        let Some(drop) = self.drop_of(code) else {
            return;
        };
        let Ok(slot) = self.slot(&drop) else { return };
        let mut book = lock(&slot.book);
        let Some(claim) = book.claims.get_mut(code) else {
            return;
        };
        if claim.state != ClaimState::Held {
            return;
        }
        lock(&self.inner.holds).remove(&(claim.hold_until_ms, code.clone()));
        if change(claim) {
            Self::return_unit(&slot, claim);
        }
    }

    fn drop_of(&self, code: &ClaimCode) -> Option<DropId> {
        self.inner
            .codes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(code)
            .cloned()
    }

    fn return_unit(slot: &DropSlot, claim: &Claim) {
        if let Some(sku) = slot.skus.get(&claim.sku) {
            let mut led = lock(sku);
            led.left += 1;
            if let Some(n) = led.per_viewer.get_mut(&claim.viewer_id) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Expires one held claim now (journaled); returns it if it was held.
    fn expire_one(
        &self,
        slot: &DropSlot,
        code: &ClaimCode,
        now_ms: u64,
    ) -> Result<Option<(Claim, Option<Pending>)>, StoreError> {
        let mut book = lock(&slot.book);
        let Some(claim) = book.claims.get_mut(code) else {
            return Ok(None);
        };
        if claim.state != ClaimState::Held {
            return Ok(None);
        }
        let pending = self.journal(&Change::Expire {
            code: code.clone(),
            at_ms: now_ms,
        })?;
        claim.state = ClaimState::Expired;
        claim.expired_ms = Some(now_ms);
        lock(&self.inner.holds).remove(&(claim.hold_until_ms, code.clone()));
        Self::return_unit(slot, claim);
        Ok(Some((claim.clone(), pending)))
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
        let slots: Vec<Arc<DropSlot>> = self
            .inner
            .drops
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut records: Vec<DropRecord> = slots.iter().map(|s| lock(&s.record).clone()).collect();
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
        {
            let book = lock(&slot.book);
            if let Some(code) = book
                .granted_rids
                .get(&(req.viewer_id.clone(), req.rid.clone()))
            {
                if let Some(claim) = book.claims.get(code) {
                    return Ok(ClaimOutcome::Granted(claim.clone()));
                }
            }
            if let Some(reason) = book.refused(&req.viewer_id, &req.rid) {
                return Ok(ClaimOutcome::Refused(reason));
            }
        }
        let Some(sku) = slot.skus.get(&req.sku) else {
            return Ok(ClaimOutcome::Refused(ClaimReason::NotOpen));
        };
        let hold_s = lock(&slot.record).spec.hold_s;
        let (claim, pending) = {
            let mut led = lock(sku);
            let refusal = if led.per_viewer.get(&req.viewer_id).copied().unwrap_or(0) >= led.limit {
                Some(ClaimReason::LimitReached)
            } else if led.left == 0 {
                Some(ClaimReason::SoldOut)
            } else {
                None
            };
            if let Some(reason) = refusal {
                drop(led);
                lock(&slot.book).remember_refusal(&req.viewer_id, &req.rid, reason);
                return Ok(ClaimOutcome::Refused(reason));
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
                hold_until_ms: req.now_ms + u64::from(hold_s) * 1000,
                redeemed_ms: None,
                expired_ms: None,
                rank: led.granted,
                points: claim_points(led.granted),
            };
            // Journal while the SKU is locked, so the journal's order is the order granted.
            let pending = self.journal(&Change::Claim {
                claim: claim.clone(),
            })?;
            led.left -= 1;
            led.granted += 1;
            *led.per_viewer.entry(req.viewer_id.clone()).or_default() += 1;
            (claim, pending)
        };
        self.index(&claim);
        lock(&slot.book).add(claim.clone());
        Self::durable(pending).await?;
        Ok(ClaimOutcome::Granted(claim))
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        let drop = self
            .drop_of(code)
            .ok_or_else(|| StoreError::NoSuchClaim(code.clone()))?;
        let slot = self.slot(&drop)?;
        let held = lock(&slot.book)
            .claims
            .get(code)
            .map(|c| (c.state, c.hold_until_ms));
        match held {
            None => return Err(StoreError::NoSuchClaim(code.clone())),
            Some((ClaimState::Held, until)) if until <= now_ms => {
                if let Some((_, pending)) = self.expire_one(&slot, code, now_ms)? {
                    Self::durable(pending).await?;
                }
                return Err(StoreError::NotHeld {
                    code: code.clone(),
                    state: ClaimState::Expired,
                });
            }
            Some((ClaimState::Held, _)) => {}
            Some((state, _)) => {
                return Err(StoreError::NotHeld {
                    code: code.clone(),
                    state,
                });
            }
        }
        let (claim, pending) = {
            let mut book = lock(&slot.book);
            let Some(claim) = book.claims.get_mut(code) else {
                return Err(StoreError::NoSuchClaim(code.clone()));
            };
            if claim.state != ClaimState::Held {
                return Err(StoreError::NotHeld {
                    code: code.clone(),
                    state: claim.state,
                });
            }
            let pending = self.journal(&Change::Redeem {
                code: code.clone(),
                at_ms: now_ms,
            })?;
            claim.state = ClaimState::Redeemed;
            claim.redeemed_ms = Some(now_ms);
            lock(&self.inner.holds).remove(&(claim.hold_until_ms, code.clone()));
            (claim.clone(), pending)
        };
        Self::durable(pending).await?;
        Ok(claim)
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        let due: Vec<ClaimCode> = {
            let mut holds = lock(&self.inner.holds);
            let mut due = Vec::new();
            while let Some((until, _)) = holds.first() {
                if *until > now_ms {
                    break;
                }
                if let Some((_, code)) = holds.pop_first() {
                    due.push(code);
                }
            }
            due
        };
        let mut expired = Vec::new();
        let mut pendings = Vec::new();
        for code in due {
            let Some(drop) = self.drop_of(&code) else {
                continue;
            };
            let slot = self.slot(&drop)?;
            if let Some((claim, pending)) = self.expire_one(&slot, &code, now_ms)? {
                expired.push(claim);
                pendings.push(pending);
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
        let mut claimers = HashSet::new();
        for claim in book.claims.values() {
            match claim.state {
                ClaimState::Held => f.held += 1,
                ClaimState::Redeemed => f.redeemed += 1,
                ClaimState::Expired => f.expired += 1,
            }
            claimers.insert(claim.viewer_id.as_str());
        }
        f.claimers = claimers.len() as u64;
        f.leaderboard = leaderboard(book.scores.values(), 10);
        Ok(f)
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        let slot = self.slot(&req.drop_id)?;
        let code = new_claim_code()?.to_string();
        let pending = {
            let mut coupons = lock(&slot.coupons);
            let given = coupons.entry(req.coupon.clone()).or_default();
            if let Some(code) = given.get(&req.viewer_id) {
                return Ok(CouponOutcome::Granted { code: code.clone() });
            }
            if given.len() >= req.limit as usize {
                return Ok(CouponOutcome::SoldOut);
            }
            let change = Change::Coupon {
                drop: req.drop_id.clone(),
                coupon: req.coupon.clone(),
                viewer: req.viewer_id.clone(),
                code: code.clone(),
            };
            let pending = self.journal(&change)?;
            given.insert(req.viewer_id.clone(), code.clone());
            pending
        };
        Self::durable(pending).await?;
        Ok(CouponOutcome::Granted { code })
    }

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        let slot = self.slot(id)?;
        let (start, pending) = {
            let mut next = lock(&slot.seq_next);
            let start = *next;
            let pending = self.journal(&Change::Seq {
                drop: id.clone(),
                next: start + n,
            })?;
            *next = start + n;
            (start, pending)
        };
        Self::durable(pending).await?;
        Ok(start)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match &self.inner.journal {
            Some(j) if !j.healthy() => Err(StoreError::Failed("a journal write failed".into())),
            _ => Ok(()),
        }
    }
}
