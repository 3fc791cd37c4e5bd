//! The embedded store's in-memory indexes over the drops it holds in memory: claim code →
//! drop, and hold deadline → claim. Both are spread over a few locks, so claims on
//! different drops rarely meet on one.
//!
//! The hold index keeps every held claim by `(deadline, code)` in sorted maps: a sweep
//! looks at the first entry of each shard, so a sweep with nothing due costs
//! O(shards · log n) whatever the number of drops and claims, and one with `k` holds due
//! O(k log n).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Mutex, RwLock};

use dropwire_core::{ClaimCode, DropId};

use super::book::lock;

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
        let mut shard = self.shard(&code).write().unwrap_or_else(|p| p.into_inner());
        shard.insert(code, drop);
    }

    pub(super) fn remove(&self, code: &ClaimCode) {
        let mut shard = self.shard(code).write().unwrap_or_else(|p| p.into_inner());
        shard.remove(code);
    }

    pub(super) fn get(&self, code: &ClaimCode) -> Option<DropId> {
        let shard = self.shard(code).read().unwrap_or_else(|p| p.into_inner());
        shard.get(code).cloned()
    }
}

/// A held claim due at some time.
pub(super) type Due = (u64, ClaimCode, DropId);

/// Held claims by deadline, for the drops in memory.
#[derive(Debug)]
pub(super) struct HoldIndex {
    shards: Vec<Mutex<BTreeMap<(u64, ClaimCode), DropId>>>,
    hasher: RandomState,
}

impl HoldIndex {
    pub(super) fn new() -> Self {
        HoldIndex {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, code: &ClaimCode) -> &Mutex<BTreeMap<(u64, ClaimCode), DropId>> {
        &self.shards[self.hasher.hash_one(code) as usize % self.shards.len()]
    }

    pub(super) fn insert(&self, until_ms: u64, code: ClaimCode, drop: DropId) {
        lock(self.shard(&code)).insert((until_ms, code), drop);
    }

    pub(super) fn remove(&self, until_ms: u64, code: &ClaimCode) {
        lock(self.shard(code)).remove(&(until_ms, code.clone()));
    }

    /// Takes every hold due at `now_ms` out of the index, earliest first in each shard.
    pub(super) fn take_due(&self, now_ms: u64) -> Vec<Due> {
        let mut due = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            while shard
                .first_key_value()
                .is_some_and(|((until, _), _)| *until <= now_ms)
            {
                if let Some(((until, code), drop)) = shard.pop_first() {
                    due.push((until, code, drop));
                }
            }
        }
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        due
    }

    /// Puts holds taken by [`HoldIndex::take_due`] back (a sweep that could not finish).
    pub(super) fn restore(&self, due: impl IntoIterator<Item = Due>) {
        for (until, code, drop) in due {
            self.insert(until, code, drop);
        }
    }

    /// How many holds the index holds.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}
