//! Taking a snapshot (a *round*): copy the state under the gate with a journal rotation,
//! archive the drops that have settled, write the snapshot, let the archived drops leave
//! memory, and delete what the new snapshot makes obsolete. One background thread runs
//! rounds when the journal's writer asks (past its thresholds), when an erasure asks, and
//! every [`SETTLED_CHECK`] if some drop in memory has settled.
//!
//! The steps, and what a crash after each leaves (every case reopens to the state the
//! journal acknowledged):
//!
//! 1. Under the gate, alone: queue a rotation to segment `s` and copy every drop in memory
//!    but the settled ones, whose version (a count of changes) is noted instead. *Crash*:
//!    the old snapshot and the segments after it, now including `s`, replay.
//! 2. Wait until everything before the rotation is durable and segment `s` exists; copy
//!    the settled drops. A change counts itself before it applies, so a drop whose version
//!    is still the noted one after its copy was copied as it was at the rotation; if one
//!    changed (rare: nothing changes a settled drop by itself), the round starts over and
//!    copies everything under the gate.
//! 3. Write each settled drop to a new archived file, and a new index if the set of
//!    archived drops changed; fsync the archive directory. *Crash*: the files are not
//!    named by any snapshot and are deleted on opening.
//! 4. Write the snapshot (temporary file, fsync, rename, fsync the directory). *Crash
//!    before the rename*: as 3. *After*: the new snapshot and segment `s` on are the state.
//! 5. Under the gate, alone: drop from memory each settled drop unchanged since step 1 (a
//!    drop changed meanwhile stays in memory; the snapshot names its archived copy, and
//!    the journal after it holds the change, which replays on top of that copy).
//! 6. Delete the segments before `s`, and the archived files and indexes the new snapshot
//!    does not name. *Crash*: opening deletes them.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::archive::{self, Index};
use super::book::{DropSlot, lock};
use super::image::DropImage;
use super::snapshot::{self, ArchivedRef, Meta};
use super::{ArchiveView, Entry, MemoryStore, Storage};
use crate::StoreError;
use crate::journal;
use crate::sync::{Unpoisoned, write};

/// How often the snapshot thread looks for settled drops in memory.
const SETTLED_CHECK: Duration = Duration::from_secs(30);
/// How long the snapshot thread waits before retrying a round that failed.
const RETRY: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The journal segment the snapshot is followed by.
    pub segment: u64,
    /// Drops written into the snapshot (in memory).
    pub resident: usize,
    /// Drops archived by this round.
    pub archived_now: usize,
    /// Drops the snapshot names as archived (a drop changed while the round ran stays in
    /// memory too, until the next one).
    pub archived: usize,
    /// The snapshot's size in bytes.
    pub bytes: u64,
    /// How long changes waited on the gate: the copy in memory and the archived drops
    /// leaving it (the files are written in between, with changes going on).
    pub paused: Duration,
}

/// Wakes the snapshot thread: a round is asked for, or the store is going away.
#[derive(Debug, Default)]
pub(super) struct Signal {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

enum Wake {
    Asked,
    Tick,
    Stop,
}

impl Signal {
    /// Asks for a round.
    pub(super) fn ask(&self) {
        lock(&self.state).0 = true;
        self.cv.notify_all();
    }

    fn stop(&self) {
        lock(&self.state).1 = true;
        self.cv.notify_all();
    }

    fn wait(&self, timeout: Duration) -> Wake {
        let state = lock(&self.state);
        let (mut state, _) = self
            .cv
            .wait_timeout_while(state, timeout, |(asked, stop)| !*asked && !*stop)
            .unpoisoned();
        if state.1 {
            Wake::Stop
        } else if state.0 {
            state.0 = false;
            Wake::Asked
        } else {
            Wake::Tick
        }
    }

    /// Sleeps `d` unless stopped first; false once stopped.
    fn pause(&self, d: Duration) -> bool {
        let state = lock(&self.state);
        let (state, _) = self
            .cv
            .wait_timeout_while(state, d, |(_, stop)| !*stop)
            .unpoisoned();
        !state.1
    }
}

/// The snapshot thread, stopped and joined when the last store handle goes.
#[derive(Debug)]
pub(super) struct Life {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Life {
    fn drop(&mut self) {
        self.signal.stop();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

/// Starts the snapshot thread of `store`.
pub(super) fn start(
    store: &MemoryStore,
    signal: Arc<Signal>,
    on_settle: bool,
) -> Result<Arc<Life>, StoreError> {
    // The thread's handle does not keep the thread alive: only the caller's handles do.
    let own = MemoryStore {
        inner: Arc::clone(&store.inner),
        life: None,
    };
    let wake = Arc::clone(&signal);
    let thread = std::thread::Builder::new()
        .name("dropwire-snapshot".into())
        .spawn(move || {
            loop {
                let run = match wake.wait(SETTLED_CHECK) {
                    Wake::Stop => return,
                    Wake::Asked => true,
                    Wake::Tick => on_settle && own.any_settled(),
                };
                if !run {
                    continue;
                }
                match own.round() {
                    Ok(r) => tracing::info!(
                        segment = r.segment,
                        resident = r.resident,
                        archived_now = r.archived_now,
                        archived = r.archived,
                        bytes = r.bytes,
                        paused_ms = r.paused.as_millis() as u64,
                        "snapshot taken, journal truncated"
                    ),
                    // A failed journal refuses everything from now on: nothing to retry.
                    Err(e @ StoreError::JournalFailed(_)) => {
                        tracing::error!(error = %e, "no snapshot: the journal failed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "snapshot failed; retrying shortly");
                        if !wake.pause(RETRY) {
                            return;
                        }
                        wake.ask();
                    }
                }
            }
        })?;
    Ok(Arc::new(Life {
        signal,
        thread: Mutex::new(Some(thread)),
    }))
}

/// What step 1 copied.
struct Capture<I> {
    clock_ms: u64,
    /// Drops staying in memory.
    keep: Vec<DropImage>,
    /// Settled drops to archive: the slot, its version at the rotation, the copy.
    settle: Vec<(Arc<DropSlot>, u64, I)>,
    /// Drops already archived.
    archived: Vec<ArchivedRef>,
}

impl Capture<Option<DropImage>> {
    /// Every settled drop copied.
    fn ready(self) -> Capture<DropImage> {
        Capture {
            clock_ms: self.clock_ms,
            keep: self.keep,
            settle: self
                .settle
                .into_iter()
                .filter_map(|(slot, version, image)| Some((slot, version, image?)))
                .collect(),
            archived: self.archived,
        }
    }
}

/// A settled drop changed while a round copied it off the gate.
#[derive(Debug)]
struct Conflict;

impl MemoryStore {
    /// Takes a snapshot now (blocking; the background thread does this on its own):
    /// archives the drops that have settled and truncates the journal.
    pub fn snapshot_now(&self) -> Result<SnapshotReport, StoreError> {
        self.round()
    }

    /// Whether some drop in memory has settled (a round would archive it).
    fn any_settled(&self) -> bool {
        let now = self.now();
        let slots: Vec<Arc<DropSlot>> = self
            .drops_read()
            .values()
            .filter_map(|e| match e {
                Entry::Resident(s) => Some(Arc::clone(s)),
                Entry::Archived(_) => None,
            })
            .collect();
        slots.iter().any(|s| s.settled(now))
    }

    fn round(&self) -> Result<SnapshotReport, StoreError> {
        if let Ok(report) = self.round_with(true)? {
            return Ok(report);
        }
        // A settled drop changed while it was copied off the gate: copy all under it.
        tracing::debug!("a settled drop changed while it was copied; copying under the gate");
        self.round_with(false)?.map_err(|Conflict| StoreError::Busy)
    }

    /// One round; with `optimistic`, settled drops are copied after the gate is released
    /// (they seldom change), and the round gives up if one changed meanwhile.
    fn round_with(&self, optimistic: bool) -> Result<Result<SnapshotReport, Conflict>, StoreError> {
        let (Some(journal), Some(storage)) = (&self.inner.journal, &self.inner.storage) else {
            return Err(StoreError::NoDataDir);
        };
        let mut rounds = lock(&storage.rounds);
        let view = self.view();
        let segment = rounds.segment + 1;
        // 1. The copy, under the gate alone.
        let paused = Instant::now();
        let (rotation, mut capture) = {
            let _gate = write(&self.inner.gate);
            let rotation = journal.rotate(segment)?;
            (rotation, self.capture(optimistic))
        };
        let mut paused = paused.elapsed();
        // The writer moves to the new segment whatever happens next.
        rounds.segment = segment;
        // 2.
        rotation.wait()?;
        // Settled drops not copied yet: the copy is the state at the rotation if nothing
        // changed the drop since (every change counts itself before it applies).
        for (slot, version, image) in &mut capture.settle {
            if image.is_none() {
                let copy = slot.image();
                if slot.version() != *version {
                    return Ok(Err(Conflict));
                }
                *image = Some(copy);
            }
        }
        let capture = capture.ready();
        // 3. The archive.
        let mut refs = capture.archived.clone();
        let mut entries = Vec::new();
        let mut fresh = Vec::new();
        for (_, _, image) in &capture.settle {
            let n = rounds.next_file;
            rounds.next_file += 1;
            archive::write_drop(&storage.archive_dir, n, image)?;
            entries.extend(archive::entries_of(image, n));
            let r = ArchivedRef {
                id: image.record.id.clone(),
                created_ms: image.record.created_ms,
                file: n,
            };
            refs.push(r.clone());
            fresh.push(r);
        }
        let live: HashSet<u64> = refs.iter().map(|r| r.file).collect();
        let before: HashSet<u64> = view.files.keys().copied().collect();
        let (index, index_ref) = if live == before {
            (None, view.index_ref.clone())
        } else if live.is_empty() {
            (None, None)
        } else {
            let r = archive::write_index(
                &storage.archive_dir,
                segment,
                view.index.as_deref(),
                &live,
                entries,
            )?;
            (
                Some(Arc::new(Index::open(&storage.archive_dir, &r, false)?)),
                Some(r),
            )
        };
        crate::files::sync_dir(&storage.archive_dir)?;
        // 4. The snapshot.
        let meta = Meta {
            segment,
            clock_ms: capture.clock_ms,
            next_file: rounds.next_file,
            index: index_ref.clone(),
            archived: refs.clone(),
            drops: capture.keep.len() as u64,
        };
        let bytes = snapshot::write(&storage.dir, &meta, &capture.keep)?;
        // 5. Settled drops leave memory.
        let new_view = Arc::new(ArchiveView {
            index: match index {
                Some(index) => Some(index),
                None if index_ref.is_some() => view.index.clone(),
                None => None,
            },
            index_ref: index_ref.clone(),
            files: refs.iter().map(|r| (r.file, r.id.clone())).collect(),
        });
        let archived_now = self.evict(&capture.settle, &fresh, new_view, &mut paused);
        // 6. What the snapshot made obsolete.
        if let Err(e) = collect_garbage(storage, segment, &live, index_ref.as_ref()) {
            tracing::warn!(error = %e, "could not delete files a snapshot made obsolete; the next opening will");
        }
        lock(&self.inner.cache).retain(|(n, _)| live.contains(n));
        Ok(Ok(SnapshotReport {
            segment,
            resident: capture.keep.len(),
            archived_now,
            archived: refs.len(),
            bytes,
            paused,
        }))
    }

    /// Step 1's copy (call it holding the gate alone); with `optimistic`, settled drops
    /// are noted with their version, to be copied after.
    fn capture(&self, optimistic: bool) -> Capture<Option<DropImage>> {
        let clock_ms = self.now();
        let drops = self.drops_read();
        let mut c = Capture {
            clock_ms,
            keep: Vec::new(),
            settle: Vec::new(),
            archived: Vec::new(),
        };
        for entry in drops.values() {
            match entry {
                Entry::Resident(slot) if slot.settled(clock_ms) => {
                    let image = (!optimistic).then(|| slot.image());
                    c.settle.push((Arc::clone(slot), slot.version(), image));
                }
                Entry::Resident(slot) => c.keep.push(slot.image()),
                Entry::Archived(r) => c.archived.push(r.clone()),
            }
        }
        c
    }

    /// Step 5: under the gate alone, each settled drop unchanged since the copy leaves
    /// memory, and the archive's view becomes the new snapshot's. Returns how many left.
    /// Their codes leave the code index after the gate is released (an entry naming a
    /// drop not in memory is stale: readers look in the archive).
    fn evict(
        &self,
        settled: &[(Arc<DropSlot>, u64, DropImage)],
        fresh: &[ArchivedRef],
        view: Arc<ArchiveView>,
        paused: &mut Duration,
    ) -> usize {
        let started = Instant::now();
        let mut gone = Vec::new();
        {
            let _gate = write(&self.inner.gate);
            let mut drops = self.drops_write();
            for ((slot, version, _), r) in settled.iter().zip(fresh) {
                let same =
                    matches!(drops.get(&r.id), Some(Entry::Resident(s)) if Arc::ptr_eq(s, slot));
                if same && slot.version() == *version {
                    drops.insert(r.id.clone(), Entry::Archived(r.clone()));
                    gone.push((Arc::clone(slot), r));
                }
            }
            *write(&self.inner.view) = view;
        }
        *paused += started.elapsed();
        for (slot, r) in &gone {
            // Unless the drop came back meanwhile (it indexed its codes again).
            if matches!(self.find(&r.id), Some(Entry::Archived(_))) {
                for code in slot.codes() {
                    self.inner.codes.remove(&code);
                }
            }
        }
        gone.len()
    }

    /// On opening, after replay: check that every archived drop the snapshot names is
    /// there, and delete the archived files and indexes it does not name (a crash's
    /// leftovers, or a round's that had no time to).
    pub(super) fn collect_garbage_at_open(
        &self,
        archived: &[ArchivedRef],
        index: Option<&archive::IndexRef>,
    ) -> Result<(), StoreError> {
        let Some(storage) = &self.inner.storage else {
            return Ok(());
        };
        // Segments before the snapshot's were deleted by the journal's opening already.
        let live: HashSet<u64> = archived.iter().map(|r| r.file).collect();
        let (found, _) = archive::list(&storage.archive_dir)?;
        let found: HashSet<u64> = found.into_iter().collect();
        if let Some(missing) = archived.iter().find(|r| !found.contains(&r.file)) {
            return Err(crate::files::corrupt(
                &storage.archive_dir.join(archive::drop_name(missing.file)),
                0,
                "an archived drop the snapshot names is missing",
                None,
            ));
        }
        remove_unnamed(storage, &live, index)
    }
}

/// Step 6.
fn collect_garbage(
    storage: &Storage,
    segment: u64,
    live: &HashSet<u64>,
    index: Option<&archive::IndexRef>,
) -> Result<(), StoreError> {
    let mut removed = false;
    for n in journal::segments(&storage.dir)? {
        if n < segment {
            std::fs::remove_file(storage.dir.join(journal::segment_name(n)))?;
            removed = true;
        }
    }
    if removed {
        crate::files::sync_dir(&storage.dir)?;
    }
    remove_unnamed(storage, live, index)
}

/// Deletes the archived drops not in `live` and every index but `index`.
fn remove_unnamed(
    storage: &Storage,
    live: &HashSet<u64>,
    index: Option<&archive::IndexRef>,
) -> Result<(), StoreError> {
    let (drops, indexes) = archive::list(&storage.archive_dir)?;
    let mut removed = false;
    for n in drops.into_iter().filter(|n| !live.contains(n)) {
        std::fs::remove_file(storage.archive_dir.join(archive::drop_name(n)))?;
        removed = true;
    }
    for name in indexes {
        if index.is_none_or(|r| r.name != name) {
            std::fs::remove_file(storage.archive_dir.join(name))?;
            removed = true;
        }
    }
    if removed {
        crate::files::sync_dir(&storage.archive_dir)?;
    }
    Ok(())
}
