//! `MemoryStore`: the embedded default. State lives in memory, locked per drop, per SKU and
//! per viewer (never a lock across `.await`); every change is journaled
//! ([`crate::journal`]) and durable before the caller is answered. Opening loads the last
//! snapshot and replays the journal written after it.
//!
//! A claim takes its viewer's lock (so one viewer's requests run one at a time and a
//! retried rid always finds the first answer), then its SKU's lock, where stock and the
//! per-viewer limit are checked, the record is queued to the journal and the claim is
//! applied. The journal's order is therefore the order in which each SKU granted. Only
//! after every lock is released does the caller wait for the group commit.
//!
//! Fair start (`draw`): entries wait in their SKU's ledger; the draw is held under the
//! SKU's lock by the first claim of the SKU at or after its time, journaled as the claims
//! it grants followed by a record of every entry's answer.
//!
//! If the journal cannot take a record (queue full: [`StoreError::Busy`]; a failed write:
//! [`StoreError::JournalFailed`]) the change is refused before anything is applied. A change
//! applied in memory whose write then fails answers `JournalFailed` (it may or may not survive a
//! restart), and from then on every write is refused and [`Store::ping`] fails.
//!
//! # Snapshots
//!
//! After [`SnapshotPolicy::every_records`] journal records or
//! [`SnapshotPolicy::every_bytes`] bytes since the last snapshot (the journal's writer
//! counts them), and whenever a drop has settled, a background thread takes a snapshot
//! ([`snapshot`] has the format). Every change holds the store's *gate* shared from finding
//! its drop to applying it (a read-lock: changes never wait for each other on it); the
//! snapshot takes it alone only to queue a journal rotation (records queued before it stay
//! in the old segment, later ones go to the new one) and copy the state in memory, so the
//! copy is exactly the state after the old segments. Writing happens off the gate: the
//! copy is written to `snapshot.dws.tmp`, fsync'd, renamed over `snapshot.dws` and the
//! directory fsync'd; then the segments before the new one are deleted. A crash between
//! any two steps reopens to the acknowledged state: before the rename, the old snapshot
//! and every segment after it are still there; after it, the new snapshot and the new
//! segment are (older segments left behind are deleted on opening).
//!
//! # Memory bounded by open drops
//!
//! A drop is *settled* once it is closed (by its timeline at the store's clock: the latest
//! time it has been told about) and no hold is left — nothing about it can change by
//! itself any more. A snapshot moves settled drops to the archive ([`archive`]): each is
//! written to a file of its own and leaves memory, which keeps the drops that are open
//! or still have holds, plus a few dozen bytes per archived drop (its id, creation time and
//! file number). Every `Store` method still answers for an archived drop exactly as
//! before: reads load it from its file (a few are cached), a redeemed or expired code is
//! found through the archive's index, and a change to an archived drop (a late
//! `reserve_seq`, a new coupon, an erasure of one of its viewers) first loads it back into
//! memory, where it stays until the next snapshot archives it again under a new file.
//! Journal records after a snapshot that touch an archived drop load it back the same
//! way on replay.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use dropwire_core::{Claim, ClaimCode, DropId};

use crate::StoreError;
use crate::files;
use crate::journal::{Journal, PendingWrite, Trigger};
use crate::sync::{read, write};
use archive::{Index, IndexRef};
use book::{Change, DropSlot, lock};
use compact::{Life, Signal};
use index::{CodeIndex, DueIndex};
use snapshot::ArchivedRef;

mod archive;
mod book;
mod compact;
mod draw;
mod image;
mod index;
mod quests;
mod replay;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;
mod viewers;

pub use compact::SnapshotReport;
pub use snapshot::FILE_NAME as SNAPSHOT_FILE;

/// Archived drops kept loaded for reads (a drop's page visited again, its claims listed).
const CACHED: usize = 4;

/// When the embedded store takes a snapshot and truncates its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// After this many journal records since the last snapshot (0: not on this count).
    pub every_records: u64,
    /// After this many bytes of journal since the last snapshot (0: not on this count).
    pub every_bytes: u64,
    /// Also whenever a drop in memory has settled (checked every 30 s), so that memory
    /// follows the open drops. Off only to measure the store without an archive.
    pub on_settle: bool,
}

impl SnapshotPolicy {
    pub const DEFAULT_RECORDS: u64 = 100_000;
    pub const DEFAULT_BYTES: u64 = 64 << 20;

    /// Snapshots only when a drop settles (or on [`MemoryStore::snapshot_now`]).
    pub fn on_settle_only() -> Self {
        SnapshotPolicy {
            every_records: 0,
            every_bytes: 0,
            on_settle: true,
        }
    }

    /// No snapshot but on [`MemoryStore::snapshot_now`]: the journal grows and every drop
    /// stays in memory, as before snapshots existed (for measurements).
    pub fn never() -> Self {
        SnapshotPolicy {
            every_records: 0,
            every_bytes: 0,
            on_settle: false,
        }
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            every_records: Self::DEFAULT_RECORDS,
            every_bytes: Self::DEFAULT_BYTES,
            on_settle: true,
        }
    }
}

/// How to open a [`MemoryStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryStoreConfig {
    /// Where the journal, the snapshot and the archive live (created if missing); `None`
    /// keeps everything in memory only, with nothing written anywhere (benchmarks,
    /// throwaway tests).
    pub data_dir: Option<PathBuf>,
    /// fsync each group commit. Turn off only to measure what fsync costs: without it a
    /// power loss may lose changes that were reported done. (Snapshots and archived drops
    /// are fsync'd either way.)
    pub fsync: bool,
    /// When to take snapshots (with a data dir).
    pub snapshots: SnapshotPolicy,
}

/// A drop in memory, or in the archive.
#[derive(Debug, Clone)]
enum Entry {
    Resident(Arc<DropSlot>),
    Archived(ArchivedRef),
}

/// The archive as the durable snapshot names it.
#[derive(Debug, Default)]
struct ArchiveView {
    index: Option<Arc<Index>>,
    index_ref: Option<IndexRef>,
    /// Every archived drop's file the snapshot names → its drop (a drop loaded back into
    /// memory since keeps its old file until the next snapshot).
    files: HashMap<u64, DropId>,
}

/// Where snapshots and the archive are written (a store with a data dir).
#[derive(Debug)]
struct Storage {
    dir: PathBuf,
    archive_dir: PathBuf,
    /// One snapshot at a time; the numbers it hands out.
    rounds: Mutex<Rounds>,
    signal: Arc<Signal>,
}

#[derive(Debug)]
struct Rounds {
    /// The journal segment being written.
    segment: u64,
    /// The number the next archived drop's file gets.
    next_file: u64,
}

#[derive(Debug)]
struct Inner {
    /// Held shared around every change, alone by a snapshot's copy and by archiving.
    gate: RwLock<()>,
    drops: RwLock<HashMap<DropId, Entry>>,
    codes: CodeIndex,
    due: DueIndex,
    /// The latest time the store has been told about (requests, sweeps, the journal).
    clock: AtomicU64,
    journal: Option<Journal>,
    storage: Option<Storage>,
    /// The archive as the durable snapshot names it (empty without a data dir).
    view: RwLock<Arc<ArchiveView>>,
    /// Archived drops loaded for reads, newest last.
    cache: Mutex<VecDeque<(u64, Arc<DropSlot>)>>,
}

/// The embedded store. Cheap to clone (all clones share the same state); the last clone
/// dropped stops the snapshot thread (after the snapshot it may be taking).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    life: Option<Arc<Life>>,
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

/// How many drops are in memory and in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    pub resident: usize,
    pub archived: usize,
    /// Claims of the drops in memory.
    pub resident_claims: usize,
    /// Holds in the deadline index.
    pub holds: usize,
}

impl MemoryStore {
    /// Opens the store: loads the snapshot in `data_dir` if there is one and replays the
    /// journal after it (a torn last record is cut off; damage elsewhere is
    /// [`StoreError::Corrupt`]).
    pub fn open(config: MemoryStoreConfig) -> Result<MemoryStore, StoreError> {
        let Some(dir) = &config.data_dir else {
            return Ok(MemoryStore::with_parts(None, None));
        };
        let started = std::time::Instant::now();
        std::fs::create_dir_all(dir)?;
        let archive_dir = dir.join(archive::DIR);
        std::fs::create_dir_all(&archive_dir)?;
        files::remove_tmp(dir)?;
        files::remove_tmp(&archive_dir)?;
        let (meta, images) = snapshot::read(dir)?.unwrap_or_default();
        let index = match &meta.index {
            Some(r) => Some(Arc::new(Index::open(&archive_dir, r, true)?)),
            None => None,
        };
        let signal = Arc::new(Signal::default());
        let ask = Arc::clone(&signal);
        let trigger = Trigger {
            records: config.snapshots.every_records,
            bytes: config.snapshots.every_bytes,
            ask: Box::new(move || ask.ask()),
        };
        let (journal, opened) =
            Journal::open::<Change>(dir, meta.segment, config.fsync, Some(trigger))?;
        let files_of = meta
            .archived
            .iter()
            .map(|r| (r.file, r.id.clone()))
            .collect();
        let view = ArchiveView {
            index,
            index_ref: meta.index.clone(),
            files: files_of,
        };
        let storage = Storage {
            dir: dir.clone(),
            archive_dir,
            rounds: Mutex::new(Rounds {
                segment: opened.segment,
                next_file: meta.next_file,
            }),
            signal: Arc::clone(&signal),
        };
        let mut store = MemoryStore::with_parts(Some(journal), Some(storage));
        *write(&store.inner.view) = Arc::new(view);
        store.tick(meta.clock_ms);
        {
            let mut drops = store.drops_write();
            for r in &meta.archived {
                drops.insert(r.id.clone(), Entry::Archived(r.clone()));
            }
            for image in images {
                store.tick(image.latest_ms());
                let slot = Arc::new(DropSlot::from_image(image));
                let id = lock(&slot.record).id.clone();
                store.install(&id, &slot);
                drops.insert(id, Entry::Resident(slot));
            }
        }
        let (records, bytes) = (opened.records.len() as u64, opened.bytes);
        for change in opened.records {
            store.replay(change)?;
        }
        store.collect_garbage_at_open(&meta.archived, meta.index.as_ref())?;
        store.life = Some(compact::start(&store, signal, config.snapshots.on_settle)?);
        let p = config.snapshots;
        if (p.every_records > 0 && records >= p.every_records)
            || (p.every_bytes > 0 && bytes >= p.every_bytes)
        {
            store.ask_for_snapshot();
        }
        let r = store.residency();
        tracing::info!(
            dir = %dir.display(),
            records,
            resident = r.resident,
            archived = r.archived,
            ms = started.elapsed().as_millis() as u64,
            "store opened: snapshot loaded, journal replayed"
        );
        Ok(store)
    }

    fn with_parts(journal: Option<Journal>, storage: Option<Storage>) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                gate: RwLock::default(),
                drops: RwLock::default(),
                codes: CodeIndex::new(),
                due: DueIndex::default(),
                clock: AtomicU64::new(0),
                journal,
                storage,
                view: RwLock::default(),
                cache: Mutex::default(),
            }),
            life: None,
        }
    }

    /// A store over `journal` alone (tests of the writer), with no snapshots.
    #[cfg(test)]
    fn with_journal(journal: Option<Journal>) -> MemoryStore {
        MemoryStore::with_parts(journal, None)
    }

    /// How many drops are in memory and in the archive.
    pub fn residency(&self) -> Residency {
        let drops = self.drops_read();
        let mut r = Residency {
            resident: 0,
            archived: 0,
            resident_claims: 0,
            holds: 0,
        };
        for entry in drops.values() {
            match entry {
                Entry::Resident(slot) => {
                    r.resident += 1;
                    r.resident_claims += lock(&slot.book).order.len();
                    r.holds += lock(&slot.holds).set.len();
                }
                Entry::Archived(_) => r.archived += 1,
            }
        }
        r
    }

    fn gate(&self) -> RwLockReadGuard<'_, ()> {
        read(&self.inner.gate)
    }

    fn drops_read(&self) -> RwLockReadGuard<'_, HashMap<DropId, Entry>> {
        read(&self.inner.drops)
    }

    fn drops_write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<DropId, Entry>> {
        write(&self.inner.drops)
    }

    fn find(&self, id: &DropId) -> Option<Entry> {
        self.drops_read().get(id).cloned()
    }

    /// The slot of a drop in memory (tests of the writer).
    #[cfg(test)]
    fn slot(&self, id: &DropId) -> Result<Arc<DropSlot>, StoreError> {
        match self.find(id) {
            Some(Entry::Resident(slot)) => Ok(slot),
            _ => Err(StoreError::NoSuchDrop(id.clone())),
        }
    }

    /// Advances the store's clock to `now_ms` (it never goes back).
    fn tick(&self, now_ms: u64) {
        self.inner.clock.fetch_max(now_ms, Ordering::AcqRel);
    }

    fn now(&self) -> u64 {
        self.inner.clock.load(Ordering::Acquire)
    }

    fn view(&self) -> Arc<ArchiveView> {
        Arc::clone(&read(&self.inner.view))
    }

    fn ask_for_snapshot(&self) {
        if let Some(s) = &self.inner.storage {
            s.signal.ask();
        }
    }

    /// Indexes a drop's claim codes and holds (it is going into memory).
    fn install(&self, id: &DropId, slot: &DropSlot) {
        for code in slot.codes() {
            self.inner.codes.insert(code, id.clone());
        }
        self.inner.due.sync(&mut lock(&slot.holds), id);
    }

    /// The drop in memory, under the gate (shared): hold the guard while changing it, and
    /// drop it before any `.await`. An archived drop is loaded back into memory first.
    fn resident(
        &self,
        id: &DropId,
    ) -> Result<(RwLockReadGuard<'_, ()>, Arc<DropSlot>), StoreError> {
        loop {
            let archived = {
                let gate = self.gate();
                match self.find(id) {
                    None => return Err(StoreError::NoSuchDrop(id.clone())),
                    Some(Entry::Resident(slot)) => return Ok((gate, slot)),
                    Some(Entry::Archived(r)) => r,
                }
            };
            match self.thaw(&archived) {
                Ok(()) => {}
                Err(e) if archive::is_gone(&e) => self.still_there(&archived, e)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Loads an archived drop back into memory (unless someone else did meanwhile).
    fn thaw(&self, r: &ArchivedRef) -> Result<(), StoreError> {
        let cached = {
            let mut cache = lock(&self.inner.cache);
            let at = cache.iter().position(|(n, _)| *n == r.file);
            at.and_then(|i| cache.remove(i)).map(|(_, slot)| slot)
        };
        let slot = match cached {
            Some(slot) => slot,
            None => Arc::new(DropSlot::from_image(archive::read_drop(
                self.archive_dir()?,
                r.file,
            )?)),
        };
        let _gate = self.gate();
        let mut drops = self.drops_write();
        if matches!(drops.get(&r.id), Some(Entry::Archived(now)) if now.file == r.file) {
            self.install(&r.id, &slot);
            drops.insert(r.id.clone(), Entry::Resident(slot));
            tracing::debug!(drop = %r.id, "an archived drop is back in memory");
        }
        Ok(())
    }

    /// After an archived file was not found: `Ok` to look again if the drop has moved
    /// meanwhile (back into memory, or archived anew), else the error.
    fn still_there(&self, r: &ArchivedRef, e: StoreError) -> Result<(), StoreError> {
        match self.find(&r.id) {
            Some(Entry::Archived(now)) if now.file == r.file => {
                tracing::error!(drop = %r.id, file = r.file, error = %e, "an archived drop's file is missing");
                Err(e)
            }
            _ => Ok(()),
        }
    }

    fn archive_dir(&self) -> Result<&std::path::Path, StoreError> {
        self.inner
            .storage
            .as_ref()
            .map(|s| s.archive_dir.as_path())
            .ok_or_else(|| {
                StoreError::Inconsistent("an archived drop in a store without a data dir".into())
            })
    }

    /// Archived drop file `n`, loaded for reading (from the cache if it is there).
    fn load_file(&self, n: u64) -> Result<Arc<DropSlot>, StoreError> {
        if let Some((_, slot)) = lock(&self.inner.cache).iter().find(|(f, _)| *f == n) {
            return Ok(Arc::clone(slot));
        }
        let slot = Arc::new(DropSlot::from_image(archive::read_drop(
            self.archive_dir()?,
            n,
        )?));
        let mut cache = lock(&self.inner.cache);
        if !cache.iter().any(|(f, _)| *f == n) {
            if cache.len() == CACHED {
                cache.pop_front();
            }
            cache.push_back((n, Arc::clone(&slot)));
        }
        Ok(slot)
    }

    /// A drop to read: in memory, or loaded from the archive (not brought back).
    fn readable(&self, id: &DropId) -> Result<Arc<DropSlot>, StoreError> {
        loop {
            match self.find(id) {
                None => return Err(StoreError::NoSuchDrop(id.clone())),
                Some(Entry::Resident(slot)) => return Ok(slot),
                Some(Entry::Archived(r)) => match self.load_file(r.file) {
                    Ok(slot) => return Ok(slot),
                    Err(e) if archive::is_gone(&e) => self.still_there(&r, e)?,
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// The archived (not in memory) drop `id`, loaded for reading, or `None`.
    fn archived(&self, id: &DropId) -> Result<Option<Arc<DropSlot>>, StoreError> {
        match self.find(id) {
            Some(Entry::Archived(r)) => match self.load_file(r.file) {
                Ok(slot) => Ok(Some(slot)),
                // Moved meanwhile: let the caller take the ordinary way.
                Err(e) if archive::is_gone(&e) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    /// A claim in the archive, by its code: `Ok(None)` if no archived drop holds it.
    fn archived_claim(&self, code: &ClaimCode) -> Result<Option<Claim>, Retry> {
        let view = self.view();
        let Some(index) = &view.index else {
            return Ok(None);
        };
        for n in index.lookup(archive::code_key(code)).map_err(Retry::Fail)? {
            if !view.files.contains_key(&n) {
                continue;
            }
            let slot = match self.load_file(n) {
                Ok(slot) => slot,
                Err(e) if archive::is_gone(&e) => return Err(Retry::Again),
                Err(e) => return Err(Retry::Fail(e)),
            };
            if let Some(claim) = lock(&slot.book).claims.get(code) {
                return Ok(Some(claim.clone()));
            }
        }
        if !Arc::ptr_eq(&view, &self.view()) {
            // A snapshot archived drops meanwhile: look again.
            return Err(Retry::Again);
        }
        Ok(None)
    }

    /// Queues a change (call it under the gate and the lock that orders it, before
    /// applying it).
    fn journal(&self, change: &Change) -> Result<Option<PendingWrite>, StoreError> {
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

    async fn durable(pending: Option<PendingWrite>) -> Result<(), StoreError> {
        match pending {
            Some(p) => p.durable().await,
            None => Ok(()),
        }
    }
}

/// Why a look in the archive must be retried or failed.
#[derive(Debug)]
enum Retry {
    Again,
    Fail(StoreError),
}
