//! A viewer across the embedded store's drops: joining a drop's early-access segment, and
//! erasure (the viewer's id replaced by a tombstone and its handle by
//! [`crate::ERASED_HANDLE`] in claims, scores, request ids, per-viewer counts, coupons and
//! segments — so every count stays right and nothing links back to the viewer).

use std::collections::HashMap;
use std::hash::Hash;

use super::MemoryStore;
use super::book::{Change, DropSlot, lock};
use crate::{ERASED_HANDLE, StoreError};

/// Moves `map[old]` to `map[new]` (merging into an existing entry is never needed: a
/// tombstone is fresh).
fn rename<V>(map: &mut HashMap<String, V>, old: &str, new: &str) -> bool {
    match map.remove(old) {
        Some(v) => {
            map.insert(new.to_owned(), v);
            true
        }
        None => false,
    }
}

fn rename_key<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, HashMap<String, V>>,
    old: &str,
    new: &str,
) {
    for inner in map.values_mut() {
        rename(inner, old, new);
    }
}

impl MemoryStore {
    /// Adds `viewer` to the drop's segment (journaled); a member already in it costs nothing.
    pub(super) async fn admit_viewer(
        &self,
        slot: &DropSlot,
        viewer: &str,
    ) -> Result<(), StoreError> {
        let pending = {
            let mut members = lock(&slot.members);
            if members.contains(viewer) {
                None
            } else {
                let drop = lock(&slot.record).id.clone();
                let pending = self.journal(&Change::Admit {
                    drop,
                    viewer: viewer.to_owned(),
                })?;
                members.insert(viewer.to_owned());
                pending
            }
        };
        match pending {
            Some(p) => Self::durable(Some(p)).await,
            None => self.settled_so_far().await,
        }
    }

    /// Erases `viewer` in every drop (journaled first); returns the claims it changed.
    pub(super) async fn erase_everywhere(
        &self,
        viewer: &str,
        tombstone: &str,
    ) -> Result<u64, StoreError> {
        let slots = self.slots();
        // The journal record goes first, under the first drop's lock on the viewer, so a
        // claim of the viewer racing the erasure is ordered before or after it everywhere.
        let mut pending = None;
        let mut changed = 0;
        for (i, slot) in slots.iter().enumerate() {
            let mut viewers = slot.viewers(viewer);
            if i == 0 {
                pending = self.journal(&Change::Erase {
                    viewer: viewer.to_owned(),
                    tombstone: tombstone.to_owned(),
                })?;
            }
            let rids = viewers.remove(viewer);
            drop(viewers);
            changed += erase_in(slot, viewer, tombstone);
            if let Some(rids) = rids {
                slot.viewers(tombstone).insert(tombstone.to_owned(), rids);
            }
        }
        match pending {
            Some(p) => Self::durable(Some(p)).await?,
            None => self.settled_so_far().await?,
        }
        Ok(changed)
    }

    /// Replays a journaled erasure.
    pub(super) fn replay_erase(&self, viewer: &str, tombstone: &str) {
        for slot in self.slots() {
            let rids = slot.viewers(viewer).remove(viewer);
            erase_in(&slot, viewer, tombstone);
            if let Some(rids) = rids {
                slot.viewers(tombstone).insert(tombstone.to_owned(), rids);
            }
        }
    }
}

/// Rewrites one drop's state of `viewer` under `tombstone`; returns the claims changed.
fn erase_in(slot: &DropSlot, viewer: &str, tombstone: &str) -> u64 {
    for sku in slot.skus.values() {
        rename(&mut lock(sku).per_viewer, viewer, tombstone);
    }
    let mut changed = 0;
    {
        let mut book = lock(&slot.book);
        for claim in book.claims.values_mut() {
            if claim.viewer_id == viewer {
                claim.viewer_id = tombstone.to_owned();
                claim.handle = ERASED_HANDLE.to_owned();
                changed += 1;
            }
        }
        if let Some(mut score) = book.scores.remove(viewer) {
            score.viewer_id = tombstone.to_owned();
            score.handle = ERASED_HANDLE.to_owned();
            book.scores.insert(tombstone.to_owned(), score);
        }
    }
    rename_key(&mut lock(&slot.coupons), viewer, tombstone);
    let mut members = lock(&slot.members);
    if members.remove(viewer) {
        members.insert(tombstone.to_owned());
    }
    changed
}
