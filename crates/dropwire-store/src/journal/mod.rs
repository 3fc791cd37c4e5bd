//! The embedded store's journal: append-only segment files in the data dir, fsync'd in
//! group commits by one writer thread before any caller hears its change is done.
//!
//! # Format (version 1)
//!
//! A segment starts with an 8-byte header: the magic `DWJ\0` and the format version as a
//! little-endian `u32`. Records follow back to back, each framed as
//!
//! ```text
//! [len: u32 LE][crc32 (IEEE) of the payload: u32 LE][payload: len bytes of JSON]
//! ```
//!
//! The payload is one change, tagged by `"t"`: `drop` (a drop was created), `control` (a
//! control entry was appended), `claim` (a claim was granted, the whole claim), `redeem`,
//! `expire` (a held claim changed state), `coupon` (a viewer took a coupon code), `seq`
//! (the new high-water mark of a drop's broadcast sequence numbers), `admit` and `erase`.
//! Replaying them in order rebuilds the store. A record is at most 16 MiB.
//!
//! # Segments
//!
//! Segment 0 is `journal.dwj` (the only file of a store that never took a snapshot, and of
//! every data dir written before snapshots existed); segment `n` is `journal-n.dwj`. The
//! store's snapshot ([`crate::memory`]) names the first segment written after it: opening
//! loads the snapshot and replays that segment and the ones after it, in order. To start
//! a segment the store queues a *rotation* ([`Journal::rotate`]) under the lock that keeps
//! every change out while it copies its state: the writer fsyncs the segment it was
//! writing, creates the next one (header written, file and directory fsync'd) and writes
//! every later record there. Segments older than the snapshot are deleted once the
//! snapshot is durable (or, after a crash in between, when the store next opens).
//!
//! # Writing
//!
//! Callers enqueue a record (in the order they apply it, under the lock that orders it) on
//! a bounded queue; when the queue is full the change is refused with
//! [`StoreError::Busy`] before anything is applied. One writer thread drains everything
//! queued, writes it, fsyncs once (`sync_data`) and then acknowledges every waiter: a
//! change is reported done only once it is on disk. If a write, an fsync or a rotation
//! fails, the journal is *failed*: nothing more is written (so no good record can follow a
//! bad one) and every later write is refused with [`StoreError::JournalFailed`] (carrying
//! the first failure) until a restart.
//! The writer counts the records and bytes written since the last rotation and, past a
//! threshold, asks the store for a snapshot (once per segment).
//!
//! # Opening
//!
//! A last segment of zero bytes (or a torn header) is initialised. A foreign magic is
//! [`StoreError::Corrupt`]; another version is [`StoreError::JournalVersion`]. When a
//! record cannot be read (too short, checksum mismatch, unreadable JSON), the rest of the
//! segment is searched for a good record: if there is none, it was the torn tail of a crash
//! mid-write and is cut off with a warning; if a good record follows, the journal is
//! damaged in the middle and opening fails with [`StoreError::Corrupt`] — an operator must
//! look, the store never silently drops acknowledged changes. Only the last segment can
//! have a torn tail (the writer fsyncs a segment before it starts the next): a damaged
//! end of an earlier one, a missing segment in the sequence, or no segment at all after a
//! snapshot are [`StoreError::Corrupt`] too.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::files::{self, FRAME};
use read::read_segment;

mod read;

/// The name of segment 0, the journal of a store that never took a snapshot.
pub const FILE_NAME: &str = "journal.dwj";
const MAGIC: &[u8; 4] = b"DWJ\0";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Records waiting for the writer at most; beyond this, writes are refused (`Busy`).
pub(crate) const QUEUE: usize = 65_536;
/// Records written per group commit at most.
const BATCH: usize = 4096;
/// The largest record the journal accepts.
const MAX_RECORD: usize = 16 << 20;
/// What [`StoreError::Stopped`] names when the writer thread is gone.
const WRITER: &str = "journal writer";

/// What the writer answers: done, or the write failure that stopped the journal.
type Outcome = Result<(), Arc<std::io::Error>>;
type Ack = oneshot::Sender<Outcome>;
type RotateAck = std::sync::mpsc::Sender<Outcome>;

/// The file name of journal segment `n`.
pub(crate) fn segment_name(n: u64) -> String {
    if n == 0 {
        FILE_NAME.to_owned()
    } else {
        format!("journal-{n}.dwj")
    }
}

/// The segment number a file name stands for, if it names a segment.
pub(crate) fn segment_number(name: &str) -> Option<u64> {
    if name == FILE_NAME {
        return Some(0);
    }
    let digits = name.strip_prefix("journal-")?.strip_suffix(".dwj")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// The segments in `dir`, in order.
pub fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(n) = segment_number(&entry?.file_name().to_string_lossy()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// What the writer thread is handed: a framed record, a barrier that is acknowledged once
/// everything queued before it is on disk, or a rotation to a new segment.
#[derive(Debug)]
enum WriterJob {
    Record(Vec<u8>, Ack),
    Barrier(Ack),
    Rotate(u64, RotateAck),
}

/// Where the writer puts the bytes: a segment file (or, in tests, a disk that fails).
pub(crate) trait Disk: Write + Send + Sized + 'static {
    /// Makes what was written durable.
    fn sync(&mut self) -> std::io::Result<()>;
    /// Starts segment `n`: a new file holding only the header, durable with its name.
    fn rotate(&mut self, n: u64) -> std::io::Result<Self>;
}

/// A journal segment on disk.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    file: File,
    dir: PathBuf,
}

impl Write for SegmentFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Disk for SegmentFile {
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn rotate(&mut self, n: u64) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.dir.join(segment_name(n)))?;
        file.write_all(&files::header(MAGIC, VERSION))?;
        file.sync_all()?;
        files::sync_dir(&self.dir)?;
        Ok(SegmentFile {
            file,
            dir: self.dir.clone(),
        })
    }
}

/// When the writer asks for a snapshot: after `records` records or `bytes` bytes since the
/// last rotation (0: never on that count), by calling `ask` (once per segment).
pub(crate) struct Trigger {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) ask: Box<dyn Fn() + Send>,
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trigger")
            .field("records", &self.records)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Trigger {
    fn due(&self, records: u64, bytes: u64) -> bool {
        (self.records > 0 && records >= self.records) || (self.bytes > 0 && bytes >= self.bytes)
    }
}

/// The sending side: enqueue records, await their durability.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    tx: SyncSender<WriterJob>,
    /// The write failure that stopped the journal, once there is one.
    failed: Arc<OnceLock<Arc<std::io::Error>>>,
}

/// A record was queued; await [`PendingWrite::durable`] to know it is on disk.
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Outcome>);

impl PendingWrite {
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::JournalFailed(e)),
            Err(_) => Err(StoreError::Stopped(WRITER)),
        }
    }
}

/// A rotation was queued; [`Rotation::wait`] blocks until the new segment exists and
/// everything queued before it is on disk.
#[derive(Debug)]
pub(crate) struct Rotation(std::sync::mpsc::Receiver<Outcome>);

impl Rotation {
    pub(crate) fn wait(self) -> Result<(), StoreError> {
        match self.0.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::JournalFailed(e)),
            Err(_) => Err(StoreError::Stopped(WRITER)),
        }
    }
}

/// What opening the journal found.
#[derive(Debug)]
pub(crate) struct Opened<R> {
    /// Every record of the segments read, in order.
    pub records: Vec<R>,
    /// The segment the writer appends to (the last one).
    pub segment: u64,
    /// Records and bytes in the segments read.
    pub bytes: u64,
}

impl Journal {
    /// Opens the journal in `dir` from segment `from` on (the first one after the snapshot,
    /// 0 without one), deleting older segments; returns the writer and what to replay.
    pub(crate) fn open<R: DeserializeOwned>(
        dir: &Path,
        from: u64,
        fsync: bool,
        trigger: Option<Trigger>,
    ) -> Result<(Journal, Opened<R>), StoreError> {
        std::fs::create_dir_all(dir)?;
        let mut numbers = segments(dir)?;
        for old in numbers.iter().filter(|n| **n < from) {
            tracing::info!(
                segment = old,
                "removing a journal segment the snapshot covers"
            );
            std::fs::remove_file(dir.join(segment_name(*old)))?;
        }
        numbers.retain(|n| *n >= from);
        if numbers.is_empty() {
            if from > 0 {
                let path = dir.join(segment_name(from));
                return Err(files::corrupt(
                    &path,
                    0,
                    "the journal segment the snapshot continues with is missing",
                    None,
                ));
            }
            numbers.push(0);
        }
        for (i, n) in numbers.iter().enumerate() {
            if *n != numbers[0] + i as u64 || numbers[0] != from {
                let path = dir.join(segment_name(numbers[0] + i as u64));
                return Err(files::corrupt(
                    &path,
                    0,
                    "a journal segment is missing from the sequence",
                    None,
                ));
            }
        }
        let mut records = Vec::new();
        let mut bytes_read = 0u64;
        let last = numbers.len() - 1;
        let mut tail = None;
        for (i, n) in numbers.iter().enumerate() {
            let path = dir.join(segment_name(*n));
            let (file, good_end) = read_segment(&path, i == last, &mut records)?;
            bytes_read += good_end as u64;
            if i == last {
                tail = Some((file, good_end));
            }
        }
        let Some((mut file, good_end)) = tail else {
            return Err(StoreError::Inconsistent(
                "no journal segment to write".into(),
            ));
        };
        file.seek(SeekFrom::Start(good_end as u64))?;
        let disk = SegmentFile {
            file,
            dir: dir.to_owned(),
        };
        let since = (records.len() as u64, bytes_read);
        let journal = Journal::start_counted(disk, fsync, QUEUE, trigger, since)?;
        let segment = numbers[last];
        Ok((
            journal,
            Opened {
                records,
                segment,
                bytes: bytes_read,
            },
        ))
    }

    /// Starts the writer thread on `disk` with room for `queue` waiting records.
    #[cfg(test)]
    pub(crate) fn start<D: Disk>(
        disk: D,
        fsync: bool,
        queue: usize,
    ) -> Result<Journal, StoreError> {
        Journal::start_counted(disk, fsync, queue, None, (0, 0))
    }

    fn start_counted<D: Disk>(
        disk: D,
        fsync: bool,
        queue: usize,
        trigger: Option<Trigger>,
        since: (u64, u64),
    ) -> Result<Journal, StoreError> {
        let (tx, rx) = sync_channel(queue);
        let failed = Arc::new(OnceLock::new());
        let flag = Arc::clone(&failed);
        let counts = Counts {
            records: since.0,
            bytes: since.1,
            asked: false,
            trigger,
        };
        std::thread::Builder::new()
            .name("dropwire-journal".into())
            .spawn(move || writer(disk, rx, fsync, flag, counts))?;
        Ok(Journal { tx, failed })
    }

    /// Queues a record; the caller awaits [`PendingWrite::durable`] after releasing its
    /// locks. Refused with `Busy` when the queue is full, `JournalFailed` after a failed write.
    pub fn append<R: Serialize>(&self, record: &R) -> Result<PendingWrite, StoreError> {
        self.check()?;
        let payload = serde_json::to_vec(record).map_err(|source| StoreError::Encode {
            what: "a journal record",
            source,
        })?;
        if payload.len() > MAX_RECORD {
            return Err(StoreError::RecordTooLarge {
                bytes: payload.len(),
                limit: MAX_RECORD,
            });
        }
        let (ack, done) = oneshot::channel();
        self.send(WriterJob::Record(payload, ack))?;
        Ok(PendingWrite(done))
    }

    /// Resolves once every record queued so far is on disk (for answers that repeat an
    /// earlier change, which must not be reported before that change is durable).
    pub(crate) fn barrier(&self) -> Result<PendingWrite, StoreError> {
        self.check()?;
        let (ack, done) = oneshot::channel();
        self.send(WriterJob::Barrier(ack))?;
        Ok(PendingWrite(done))
    }

    /// Queues a rotation to segment `n`: records queued before it stay in the segment being
    /// written, records queued after it go to segment `n`.
    pub(crate) fn rotate(&self, n: u64) -> Result<Rotation, StoreError> {
        self.check()?;
        let (ack, done) = std::sync::mpsc::channel();
        self.send(WriterJob::Rotate(n, ack))?;
        Ok(Rotation(done))
    }

    /// `JournalFailed` with the failure that stopped the journal, if one did.
    pub fn check(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            None => Ok(()),
            Some(e) => Err(StoreError::JournalFailed(Arc::clone(e))),
        }
    }

    fn send(&self, job: WriterJob) -> Result<(), StoreError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Stopped(WRITER)),
        }
    }
}

/// Records and bytes written since the last rotation, and when to ask for a snapshot.
struct Counts {
    records: u64,
    bytes: u64,
    asked: bool,
    trigger: Option<Trigger>,
}

/// The writer thread: drain what is queued, write it, fsync once, acknowledge all. After a
/// failure it writes nothing more and acknowledges everything with the error.
fn writer<D: Disk>(
    disk: D,
    rx: Receiver<WriterJob>,
    fsync: bool,
    failed: Arc<OnceLock<Arc<std::io::Error>>>,
    mut counts: Counts,
) {
    let mut out = BufWriter::with_capacity(256 * 1024, disk);
    let mut batch: Vec<WriterJob> = Vec::new();
    let mut broken: Option<Arc<std::io::Error>> = None;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if broken.is_none()
            && let Err(e) = write_batch(&mut out, &batch, fsync, &mut counts)
        {
            tracing::error!(error = %e, "journal write failed; the store refuses writes until restarted");
            let e = Arc::new(e);
            let _ = failed.set(Arc::clone(&e));
            broken = Some(e);
        }
        let result = match &broken {
            None => Ok(()),
            Some(e) => Err(Arc::clone(e)),
        };
        for job in batch.drain(..) {
            match job {
                WriterJob::Record(_, ack) | WriterJob::Barrier(ack) => {
                    let _ = ack.send(result.clone());
                }
                WriterJob::Rotate(_, ack) => {
                    let _ = ack.send(result.clone());
                }
            }
        }
        if broken.is_none()
            && !counts.asked
            && let Some(trigger) = &counts.trigger
            && trigger.due(counts.records, counts.bytes)
        {
            counts.asked = true;
            (trigger.ask)();
        }
    }
    // Never flush on the way out: after a failure the buffer may hold half a batch.
    drop(out.into_parts());
}

fn write_batch<D: Disk>(
    out: &mut BufWriter<D>,
    batch: &[WriterJob],
    fsync: bool,
    counts: &mut Counts,
) -> std::io::Result<()> {
    let mut wrote = false;
    for job in batch {
        match job {
            WriterJob::Record(payload, _) => {
                files::write_frame(out, payload)?;
                counts.records += 1;
                counts.bytes += (FRAME + payload.len()) as u64;
                wrote = true;
            }
            WriterJob::Barrier(_) => {}
            WriterJob::Rotate(n, _) => {
                // Everything before the rotation is durable in the old segment first.
                out.flush()?;
                out.get_mut().sync()?;
                wrote = false;
                let next = out.get_mut().rotate(*n)?;
                *out = BufWriter::with_capacity(256 * 1024, next);
                counts.records = 0;
                counts.bytes = 0;
                counts.asked = false;
            }
        }
    }
    if wrote {
        out.flush()?;
        if fsync {
            out.get_mut().sync()?;
        }
    }
    Ok(())
}
