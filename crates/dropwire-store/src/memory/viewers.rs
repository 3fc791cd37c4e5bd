//! A viewer across the embedded store's drops: joining a drop's early-access segment, and
//! erasure (the viewer's id replaced by a tombstone and its handle by
//! [`crate::ERASED_HANDLE`] in claims, scores, request ids, per-viewer counts, coupons and
//! segments — so every count stays right and nothing links back to the viewer). Erasure
//! reaches archived drops too: those the archive's index names for the viewer are loaded
//! back into memory and erased there, and the snapshot the erasure asks for archives them
//! anew and deletes their old files and the journal segments written before it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLockReadGuard};

use dropwire_core::DropId;

use super::book::{Change, DropSlot, lock};
use super::snapshot::ArchivedRef;
use super::{Entry, MemoryStore, archive};
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

/// The gate (shared), every drop in memory, and whether archived drops came back.
type Targets<'a> = (RwLockReadGuard<'a, ()>, Vec<Arc<DropSlot>>, bool);

impl MemoryStore {
    /// Adds `viewer` to the drop's segment (journaled); a member already in it costs nothing
    /// (an archived drop answers that from its file).
    pub(super) async fn admit_viewer(&self, drop: &DropId, viewer: &str) -> Result<(), StoreError> {
        if let Some(slot) = self.archived(drop)?
            && lock(&slot.members).contains(viewer)
        {
            return self.settled_so_far().await;
        }
        let pending = {
            let (_gate, slot) = self.resident(drop)?;
            let mut members = lock(&slot.members);
            if members.contains(viewer) {
                None
            } else {
                let pending = self.journal(&Change::Admit {
                    drop: drop.clone(),
                    viewer: viewer.to_owned(),
                })?;
                slot.touch();
                members.insert(viewer.to_owned());
                pending
            }
        };
        match pending {
            Some(p) => Self::durable(Some(p)).await,
            None => self.settled_so_far().await,
        }
    }

    /// Every drop in memory, under the gate (shared), once the archived drops that may hold
    /// `viewer` (by the archive's index) are back in memory; and whether there were any.
    fn erase_targets(&self, viewer: &str) -> Result<Targets<'_>, StoreError> {
        loop {
            let view = self.view();
            let candidates: Vec<ArchivedRef> = match &view.index {
                None => Vec::new(),
                Some(index) => {
                    let files = index.lookup(archive::viewer_key(viewer))?;
                    let drops = self.drops_read();
                    files
                        .iter()
                        .filter_map(|n| view.files.get(n))
                        .filter_map(|id| match drops.get(id) {
                            Some(Entry::Archived(r)) if files.contains(&r.file) => Some(r.clone()),
                            _ => None,
                        })
                        .collect()
                }
            };
            for r in &candidates {
                match self.thaw(r) {
                    Ok(()) => {}
                    Err(e) if archive::is_gone(&e) => self.still_there(r, e)?,
                    Err(e) => return Err(e),
                }
            }
            let gate = self.gate();
            if !Arc::ptr_eq(&view, &self.view()) {
                // A snapshot archived drops meanwhile: look again.
                continue;
            }
            let drops = self.drops_read();
            if candidates
                .iter()
                .any(|r| matches!(drops.get(&r.id), Some(Entry::Archived(_))))
            {
                continue;
            }
            let slots = drops
                .values()
                .filter_map(|e| match e {
                    Entry::Resident(slot) => Some(Arc::clone(slot)),
                    Entry::Archived(_) => None,
                })
                .collect();
            drop(drops);
            return Ok((gate, slots, !candidates.is_empty()));
        }
    }

    /// Erases `viewer` in every drop, archived ones included (journaled first); returns the
    /// claims it changed. Then asks for a snapshot: it archives the drops changed anew and
    /// deletes the old archived files and the journal segments that still name the viewer.
    pub(super) async fn erase_everywhere(
        &self,
        viewer: &str,
        tombstone: &str,
    ) -> Result<u64, StoreError> {
        let (pending, changed, thawed) = {
            let (_gate, slots, thawed) = self.erase_targets(viewer)?;
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
                slot.touch();
                let rids = viewers.remove(viewer);
                drop(viewers);
                changed += erase_in(slot, viewer, tombstone);
                if let Some(rids) = rids {
                    slot.viewers(tombstone).insert(tombstone.to_owned(), rids);
                }
            }
            (pending, changed, thawed)
        };
        match pending {
            Some(p) => Self::durable(Some(p)).await?,
            None => self.settled_so_far().await?,
        }
        if changed > 0 || thawed {
            self.ask_for_snapshot();
        }
        Ok(changed)
    }

    /// Replays a journaled erasure (archived drops holding the viewer come back first).
    pub(super) fn replay_erase(&self, viewer: &str, tombstone: &str) -> Result<(), StoreError> {
        let (_gate, slots, _) = self.erase_targets(viewer)?;
        for slot in slots {
            let rids = slot.viewers(viewer).remove(viewer);
            erase_in(&slot, viewer, tombstone);
            if let Some(rids) = rids {
                slot.viewers(tombstone).insert(tombstone.to_owned(), rids);
            }
        }
        Ok(())
    }
}

/// Rewrites one drop's state of `viewer` under `tombstone`; returns the claims changed.
fn erase_in(slot: &DropSlot, viewer: &str, tombstone: &str) -> u64 {
    for sku in slot.skus.values() {
        let mut ledger = lock(sku);
        rename(&mut ledger.per_viewer, viewer, tombstone);
        for draw in ledger.draws.values_mut() {
            draw.erase(viewer, tombstone);
        }
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
        rename_key(&mut book.awards, viewer, tombstone);
    }
    rename_key(&mut lock(&slot.coupons), viewer, tombstone);
    let mut members = lock(&slot.members);
    if members.remove(viewer) {
        members.insert(tombstone.to_owned());
    }
    changed
}
