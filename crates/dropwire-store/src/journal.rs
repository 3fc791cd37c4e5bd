//! The embedded store's journal: an append-only file in the data dir, fsync'd in group
//! commits by one writer thread before any caller hears its change is done.
//!
//! # Format (version 1)
//!
//! `journal.dwj` starts with an 8-byte header: the magic `DWJ\0` and the format version as
//! a little-endian `u32`. Records follow back to back, each framed as
//!
//! ```text
//! [len: u32 LE][crc32 (IEEE) of the payload: u32 LE][payload: len bytes of JSON]
//! ```
//!
//! The payload is one change, tagged by `"t"`: `drop` (a drop was created), `control` (a
//! control entry was appended), `claim` (a claim was granted, the whole claim), `redeem`,
//! `expire` (a held claim changed state), `coupon` (a viewer took a coupon code) and `seq`
//! (the new high-water mark of a drop's broadcast sequence numbers). Replaying them in
//! order rebuilds the store. A record is at most 16 MiB.
//!
//! # Writing
//!
//! Callers enqueue a record (in the order they apply it, under the lock that orders it) on
//! a bounded queue; when the queue is full the change is refused with
//! [`StoreError::Busy`] before anything is applied. One writer thread drains everything
//! queued, writes it, fsyncs once (`sync_data`) and then acknowledges every waiter: a
//! change is reported done only once it is on disk. If a write or an fsync fails, the
//! journal is *failed*: nothing more is written (so no good record can follow a bad one)
//! and every later write is refused with [`StoreError::Failed`] until a restart.
//!
//! # Opening
//!
//! A file of zero bytes (or a torn header) is initialised. A foreign magic is
//! [`StoreError::Corrupt`]; another version is [`StoreError::JournalVersion`]. When a
//! record cannot be read (too short, checksum mismatch, unreadable JSON), the rest of the
//! file is searched for a good record: if there is none, it was the torn tail of a crash
//! mid-write and is cut off with a warning; if a good record follows, the journal is
//! damaged in the middle and opening fails with [`StoreError::Corrupt`] — an operator must
//! look, the store never silently drops acknowledged changes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::error::StoreError;

/// The journal's file name inside the data dir.
pub const FILE_NAME: &str = "journal.dwj";
const MAGIC: &[u8; 4] = b"DWJ\0";
/// The format version this build reads and writes.
pub const VERSION: u32 = 1;
const HEADER: usize = 8;
const FRAME: usize = 8;
/// Records waiting for the writer at most; beyond this, writes are refused (`Busy`).
pub(crate) const QUEUE: usize = 65_536;
/// Records written per group commit at most.
const BATCH: usize = 4096;
/// The largest record the journal accepts.
const MAX_RECORD: usize = 16 << 20;

type Ack = oneshot::Sender<Result<(), String>>;

/// What the writer thread is handed: a framed record, or a barrier that is acknowledged
/// once everything queued before it is on disk.
#[derive(Debug)]
enum Item {
    Record(Vec<u8>, Ack),
    Barrier(Ack),
}

/// Where the writer puts the bytes: the journal file (or, in tests, a disk that fails).
pub(crate) trait Disk: Write + Send + 'static {
    /// Makes what was written durable.
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Disk for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// The sending side: enqueue records, await their durability.
#[derive(Debug, Clone)]
pub struct Journal {
    tx: SyncSender<Item>,
    failed: Arc<AtomicBool>,
}

/// A record was queued; await [`Pending::durable`] to know it is on disk.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<(), String>>);

impl Pending {
    pub async fn durable(self) -> Result<(), StoreError> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Failed(e)),
            Err(_) => Err(StoreError::Failed("the journal writer stopped".into())),
        }
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`; returns the writer and the records to replay.
    pub fn open<R: DeserializeOwned>(
        dir: &Path,
        fsync: bool,
    ) -> Result<(Journal, Vec<R>), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let shown = path.display().to_string();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let header = header();
        if bytes.len() < HEADER && header.starts_with(&bytes) {
            // New, or a crash while the header was being written.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header)?;
            file.sync_all()?;
            File::open(dir)?.sync_all()?;
            bytes = header.to_vec();
        }
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(StoreError::Corrupt {
                offset: 0,
                what: "not a dropwire journal (wrong magic)",
                source: None,
            });
        }
        let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if found != VERSION {
            return Err(StoreError::JournalVersion {
                path: shown,
                found,
                expected: VERSION,
            });
        }
        let (records, good_end) = parse(&bytes)?;
        if good_end < bytes.len() {
            tracing::warn!(
                path = %shown,
                at = good_end,
                dropped_bytes = bytes.len() - good_end,
                "the journal ends in a torn record (a crash mid-write); cutting it off"
            );
            file.set_len(good_end as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(good_end as u64))?;
        Ok((Journal::start(file, fsync, QUEUE)?, records))
    }

    /// Starts the writer thread on `disk` with room for `queue` waiting records.
    pub(crate) fn start<D: Disk>(
        disk: D,
        fsync: bool,
        queue: usize,
    ) -> Result<Journal, StoreError> {
        let (tx, rx) = sync_channel(queue);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        std::thread::Builder::new()
            .name("dropwire-journal".into())
            .spawn(move || writer(disk, rx, fsync, flag))?;
        Ok(Journal { tx, failed })
    }

    /// Queues a record; the caller awaits [`Pending::durable`] after releasing its locks.
    /// Refused with `Busy` when the queue is full, `Failed` after a failed write.
    pub fn append<R: Serialize>(&self, record: &R) -> Result<Pending, StoreError> {
        self.check()?;
        let payload = serde_json::to_vec(record).map_err(|e| StoreError::Failed(e.to_string()))?;
        if payload.len() > MAX_RECORD {
            return Err(StoreError::Failed(format!(
                "a journal record of {} bytes is over the limit",
                payload.len()
            )));
        }
        let (ack, done) = oneshot::channel();
        self.send(Item::Record(payload, ack))?;
        Ok(Pending(done))
    }

    /// Resolves once every record queued so far is on disk (for answers that repeat an
    /// earlier change, which must not be reported before that change is durable).
    pub fn barrier(&self) -> Result<Pending, StoreError> {
        self.check()?;
        let (ack, done) = oneshot::channel();
        self.send(Item::Barrier(ack))?;
        Ok(Pending(done))
    }

    /// False once a write or an fsync has failed.
    pub fn healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.healthy() {
            Ok(())
        } else {
            Err(StoreError::Failed("an earlier journal write failed".into()))
        }
    }

    fn send(&self, item: Item) -> Result<(), StoreError> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(StoreError::Failed("the journal writer stopped".into()))
            }
        }
    }
}

fn header() -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(MAGIC);
    h[4..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Why the record at some offset cannot be read.
struct Bad {
    what: &'static str,
    json: Option<serde_json::Error>,
}

/// Parses the records after the header; returns them and the offset where the good ones
/// end (the file's length unless its tail is torn).
fn parse<R: DeserializeOwned>(bytes: &[u8]) -> Result<(Vec<R>, usize), StoreError> {
    let mut records = Vec::new();
    let mut at = HEADER;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Ok((record, end)) => {
                records.push(record);
                at = end;
            }
            Err(bad) => {
                if good_frame_after(bytes, at + 1) {
                    return Err(StoreError::Corrupt {
                        offset: at as u64,
                        what: bad.what,
                        source: bad.json,
                    });
                }
                return Ok((records, at));
            }
        }
    }
    Ok((records, at))
}

/// The payload of a well-framed record at `at` whose checksum matches.
fn frame_at(bytes: &[u8], at: usize) -> Result<&[u8], &'static str> {
    let Some(head) = bytes.get(at..at + FRAME) else {
        return Err("a record header cut short");
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_RECORD {
        return Err("a record length over the limit");
    }
    let Some(payload) = bytes.get(at + FRAME..at + FRAME + len) else {
        return Err("a record cut short");
    };
    if crc32fast::hash(payload) != crc {
        return Err("a checksum mismatch");
    }
    Ok(payload)
}

fn record_at<R: DeserializeOwned>(bytes: &[u8], at: usize) -> Result<(R, usize), Bad> {
    let payload = frame_at(bytes, at).map_err(|what| Bad { what, json: None })?;
    let record = serde_json::from_slice(payload).map_err(|e| Bad {
        what: "a record that is not a change this build knows",
        json: Some(e),
    })?;
    Ok((record, at + FRAME + payload.len()))
}

/// Whether a well-framed JSON record starts anywhere at or after `from`.
fn good_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(FRAME)).any(|i| {
        bytes.get(i + FRAME) == Some(&b'{')
            && frame_at(bytes, i)
                .is_ok_and(|p| serde_json::from_slice::<serde::de::IgnoredAny>(p).is_ok())
    })
}

/// The writer thread: drain what is queued, write it, fsync once, acknowledge all. After a
/// failure it writes nothing more and acknowledges everything with the error.
fn writer<D: Disk>(disk: D, rx: Receiver<Item>, fsync: bool, failed: Arc<AtomicBool>) {
    let mut out = BufWriter::with_capacity(256 * 1024, disk);
    let mut batch: Vec<Item> = Vec::new();
    let mut broken: Option<String> = None;
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if broken.is_none() {
            if let Err(e) = write_batch(&mut out, &batch, fsync) {
                tracing::error!(error = %e, "journal write failed; the store refuses writes until restarted");
                failed.store(true, Ordering::Release);
                broken = Some(format!("journal write failed: {e}"));
            }
        }
        let result = match &broken {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        };
        for item in batch.drain(..) {
            let (Item::Record(_, ack) | Item::Barrier(ack)) = item;
            let _ = ack.send(result.clone());
        }
    }
    // Never flush on the way out: after a failure the buffer may hold half a batch.
    drop(out.into_parts());
}

fn write_batch<D: Disk>(
    out: &mut BufWriter<D>,
    batch: &[Item],
    fsync: bool,
) -> std::io::Result<()> {
    let mut wrote = false;
    for item in batch {
        if let Item::Record(payload, _) = item {
            out.write_all(&(payload.len() as u32).to_le_bytes())?;
            out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
            out.write_all(payload)?;
            wrote = true;
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
