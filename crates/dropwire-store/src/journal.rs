//! The embedded store's journal: an append-only file in the data dir, fsync'd in group
//! commits by one writer thread before any caller hears its change is done.
//!
//! # Format (version 1)
//!
//! `journal.dwj` starts with the 4 bytes `DWJ\0` and a little-endian `u32` version. Each
//! record follows as `[len: u32 LE][crc32 of the payload: u32 LE][payload: len bytes of JSON]`.
//! On open, a torn *last* record (short, or failing its CRC, as a crash mid-write leaves
//! it) is cut off with a warning; a bad record followed by more data is corruption and an
//! error: the operator must look.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::error::StoreError;

const MAGIC: &[u8; 4] = b"DWJ\0";
pub const VERSION: u32 = 1;
const HEADER: u64 = 8;
/// Records waiting for the writer at most; beyond this, writes are refused (`Busy`).
const QUEUE: usize = 65_536;
/// The largest record the journal accepts.
const MAX_RECORD: u32 = 16 << 20;

type Ack = oneshot::Sender<Result<(), String>>;

/// The sending side: enqueue records, await their durability.
#[derive(Debug, Clone)]
pub struct Journal {
    tx: SyncSender<(Vec<u8>, Ack)>,
    failed: Arc<AtomicBool>,
}

/// A record was queued; await this to know it is on disk.
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
    /// Opens (or creates) the journal in `dir`, returns its records and the writer.
    pub fn open<R: DeserializeOwned>(
        dir: &Path,
        fsync: bool,
    ) -> Result<(Journal, Vec<R>), StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.dwj");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if bytes.is_empty() {
            file.write_all(MAGIC)?;
            file.write_all(&VERSION.to_le_bytes())?;
            file.sync_all()?;
            bytes.extend_from_slice(MAGIC);
            bytes.extend_from_slice(&VERSION.to_le_bytes());
        }
        if bytes.len() < HEADER as usize || &bytes[..4] != MAGIC {
            return Err(StoreError::JournalVersion {
                path: path.display().to_string(),
                found: 0,
                expected: VERSION,
            });
        }
        let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if found != VERSION {
            return Err(StoreError::JournalVersion {
                path: path.display().to_string(),
                found,
                expected: VERSION,
            });
        }
        let (records, good_end) = parse(&bytes)?;
        if good_end < bytes.len() as u64 {
            tracing::warn!(path = %path.display(), dropped = bytes.len() as u64 - good_end, "journal ends in a torn record (a crash mid-write); dropping it");
            file.set_len(good_end)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(good_end))?;
        let (tx, rx) = sync_channel(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        std::thread::Builder::new()
            .name("dropwire-journal".into())
            .spawn(move || writer(file, rx, fsync, flag))?;
        Ok((Journal { tx, failed }, records))
    }

    /// Queues a record; the caller awaits [`Pending::durable`] after releasing its locks.
    pub fn append<R: Serialize>(&self, record: &R) -> Result<Pending, StoreError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Failed("an earlier journal write failed".into()));
        }
        let payload = serde_json::to_vec(record).map_err(|e| StoreError::Failed(e.to_string()))?;
        let (ack, done) = oneshot::channel();
        match self.tx.try_send((payload, ack)) {
            Ok(()) => Ok(Pending(done)),
            Err(TrySendError::Full(_)) => Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                Err(StoreError::Failed("the journal writer stopped".into()))
            }
        }
    }

    pub fn healthy(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }
}

/// Records and the offset where the good ones end.
fn parse<R: DeserializeOwned>(bytes: &[u8]) -> Result<(Vec<R>, u64), StoreError> {
    let mut records = Vec::new();
    let mut at = HEADER as usize;
    while at < bytes.len() {
        let torn = |records: Vec<R>| Ok((records, at as u64));
        if bytes.len() - at < 8 {
            return torn(records);
        }
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let end = at + 8 + len as usize;
        if len > MAX_RECORD || end > bytes.len() {
            return torn(records);
        }
        let payload = &bytes[at + 8..end];
        let last = end == bytes.len();
        if crc32fast::hash(payload) != crc {
            if last {
                return torn(records);
            }
            let source = serde_json::from_slice::<serde_json::Value>(b"!").unwrap_err();
            return Err(StoreError::Corrupt {
                offset: at as u64,
                source,
            });
        }
        match serde_json::from_slice(payload) {
            Ok(r) => records.push(r),
            Err(_) if last => return torn(records),
            Err(source) => {
                return Err(StoreError::Corrupt {
                    offset: at as u64,
                    source,
                });
            }
        }
        at = end;
    }
    Ok((records, at as u64))
}

/// The writer thread: drain what is queued, write it, fsync once, acknowledge all.
fn writer(file: File, rx: Receiver<(Vec<u8>, Ack)>, fsync: bool, failed: Arc<AtomicBool>) {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut batch: Vec<(Vec<u8>, Ack)> = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let result = write_batch(&mut out, &batch, fsync);
        if let Err(e) = &result {
            tracing::error!(error = %e, "journal write failed; the store refuses writes from now on");
            failed.store(true, Ordering::Release);
        }
        for (_, ack) in batch.drain(..) {
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
    }
}

fn write_batch(
    out: &mut BufWriter<File>,
    batch: &[(Vec<u8>, Ack)],
    fsync: bool,
) -> std::io::Result<()> {
    for (payload, _) in batch {
        out.write_all(&(payload.len() as u32).to_le_bytes())?;
        out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
        out.write_all(payload)?;
    }
    out.flush()?;
    if fsync {
        out.get_ref().sync_data()?;
    }
    Ok(())
}
