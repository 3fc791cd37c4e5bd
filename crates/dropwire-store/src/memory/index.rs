//! The embedded store's in-memory indexes over the drops it holds in memory: claim code →
//! drop (spread over a few locks), and hold deadlines.
//!
//! Each drop keeps its held claims by `(deadline, code)`; the store keeps one sorted set
//! of `(earliest deadline, drop)` with one entry per drop that has holds. A sweep with
//! nothing due reads the first entry of that set: O(log d) for `d` drops with holds,
//! whatever the number of claims; one with `k` holds due costs O(k log n). Claims, which
//! mostly add holds later than a drop's earliest, touch the drop's own set alone.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, RwLock};

use dropwire_core::{ClaimCode, DropId};

use super::book::{DropSlot, lock};
use crate::sync::{read, write};

const SHARDS: usize = 16;

/// Claim code → drop, for the drops in memory.
#[derive(Debug)]
pub(super) struct CodeIndex {
    shards: Vec<RwLock<HashMap<ClaimCode, DropId>>>,
    hasher: RandomState,
}

impl CodeIndex {
    pub(super) fn new() -> Self {
        CodeIndex {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, code: &ClaimCode) -> &RwLock<HashMap<ClaimCode, DropId>> {
        &self.shards[self.hasher.hash_one(code) as usize % self.shards.len()]
    }

    pub(super) fn insert(&self, code: ClaimCode, drop: DropId) {
        let mut shard = write(self.shard(&code));
        shard.insert(code, drop);
    }

    pub(super) fn remove(&self, code: &ClaimCode) {
        let mut shard = write(self.shard(code));
        shard.remove(code);
    }

    pub(super) fn get(&self, code: &ClaimCode) -> Option<DropId> {
        let shard = read(self.shard(code));
        shard.get(code).cloned()
    }
}

/// A held claim due at some time.
pub(super) type Due = (u64, ClaimCode, DropId);

/// A drop's held claims by deadline, and the deadline under which the drop is entered in
/// the store's [`DueIndex`] (its earliest, once synced).
#[derive(Debug, Default)]
pub(super) struct Holds {
    pub(super) set: BTreeSet<(u64, ClaimCode)>,
    entered: Option<u64>,
}

/// The drops with holds, each once, by its earliest hold's deadline: a sweep with nothing
/// due looks at one entry; a hold added after a drop's earliest (the usual case) or
/// settled other than first leaves it alone.
#[derive(Debug, Default)]
pub(super) struct DueIndex {
    set: Mutex<BTreeSet<(u64, DropId)>>,
}

impl DueIndex {
    /// Enters the drop under its earliest deadline (call it with the drop's holds locked,
    /// after changing them).
    pub(super) fn sync(&self, holds: &mut Holds, id: &DropId) {
        let want = holds.set.first().map(|(until, _)| *until);
        if want == holds.entered {
            return;
        }
        let mut set = lock(&self.set);
        if let Some(was) = holds.entered {
            set.remove(&(was, id.clone()));
        }
        if let Some(now) = want {
            set.insert((now, id.clone()));
        }
        holds.entered = want;
    }

    /// Adds a hold of drop `id`.
    pub(super) fn hold(&self, slot: &DropSlot, id: &DropId, until_ms: u64, code: ClaimCode) {
        let mut holds = lock(&slot.holds);
        holds.set.insert((until_ms, code));
        self.sync(&mut holds, id);
    }

    /// Removes a hold of drop `id` (settled).
    pub(super) fn release(&self, slot: &DropSlot, id: &DropId, until_ms: u64, code: &ClaimCode) {
        let mut holds = lock(&slot.holds);
        holds.set.remove(&(until_ms, code.clone()));
        self.sync(&mut holds, id);
    }

    /// Takes every hold due at `now_ms` out of the drops (found by `slot_of`), earliest
    /// drop first.
    pub(super) fn take_due(
        &self,
        now_ms: u64,
        slot_of: impl Fn(&DropId) -> Option<Arc<DropSlot>>,
    ) -> Vec<Due> {
        let mut due = Vec::new();
        loop {
            let first = lock(&self.set).first().cloned();
            let Some((at, id)) = first.filter(|(at, _)| *at <= now_ms) else {
                break;
            };
            let Some(slot) = slot_of(&id) else {
                // A drop not in memory has no holds.
                lock(&self.set).remove(&(at, id));
                continue;
            };
            let mut holds = lock(&slot.holds);
            while holds.set.first().is_some_and(|(until, _)| *until <= now_ms) {
                if let Some((until, code)) = holds.set.pop_first() {
                    due.push((until, code, id.clone()));
                }
            }
            self.sync(&mut holds, &id);
            if holds.entered != Some(at) {
                // Never left behind, whatever the drop was entered under.
                lock(&self.set).remove(&(at, id));
            }
        }
        due
    }
}
