//! The archive: settled drops (closed, no hold left) moved out of memory into one file
//! each, and an index that finds the drop of a claim code or of a viewer without reading
//! them all. Both live in `DATA_DIR/archive/`.
//!
//! # Files (format version 1)
//!
//! - `<n>.dwa` (n: 16 hex digits, never reused): one archived drop. The header (magic
//!   `DWA\0`, version) and two frames as in [`crate::files`]: the drop's record (JSON
//!   [`DropRecord`]), then the rest of its state (JSON, see [`super::image`]). An archived
//!   drop is never changed in place: a drop that changes again (a late `reserve_seq`, an
//!   erasure) is loaded back into memory, and the next snapshot archives it under a new
//!   number; the old file is deleted once that snapshot is durable.
//! - `index-<g>.dwi`: the header (magic `DWI\0`, version), then the number of entries
//!   (`u64` LE), the crc32 of the entries (`u32` LE) and 4 zero bytes, then the entries,
//!   16 bytes each, sorted: a key (`u64` LE, FNV-1a 64 of `c` + a claim code or `v` + a
//!   viewer id) and the number of an archived drop holding it (`u64` LE). A lookup is a
//!   binary search on disk; a key may name drops that no longer hold it (hash collisions,
//!   erased viewers), so the caller checks the drop it loads. The snapshot names the
//!   index in force with its entry count and checksum, verified when the store opens.
//!   A new index (the entries of drops still archived, merged with those of the drops
//!   archived now) is written whenever the set of archived drops changes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dropwire_core::{ClaimCode, DropRecord};
use serde::{Deserialize, Serialize};

use super::book::lock;
use super::image::{DropImage, ImageBody};
use crate::error::StoreError;
use crate::files::{self, HEADER};

/// The archive's directory inside the data dir.
pub(super) const DIR: &str = "archive";
const DROP_MAGIC: &[u8; 4] = b"DWA\0";
const INDEX_MAGIC: &[u8; 4] = b"DWI\0";
const VERSION: u32 = 1;
const MAX_FRAME: usize = u32::MAX as usize;
const INDEX_HEADER: u64 = HEADER as u64 + 16;
const ENTRY: u64 = 16;

/// An entry of the index: a key and an archived drop's file number.
pub(super) type Entry = (u64, u64);

/// The file name of archived drop `n`.
pub(super) fn drop_name(n: u64) -> String {
    format!("{n:016x}.dwa")
}

fn drop_number(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".dwa")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// The file name of index generation `g`.
pub(super) fn index_name(g: u64) -> String {
    format!("index-{g}.dwi")
}

fn fnv(kind: u8, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(kind).chain(s.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub(super) fn code_key(code: &ClaimCode) -> u64 {
    fnv(b'c', code.as_str())
}

pub(super) fn viewer_key(viewer: &str) -> u64 {
    fnv(b'v', viewer)
}

/// The index entries of a drop about to be archived as file `n`.
pub(super) fn entries_of(image: &DropImage, n: u64) -> Vec<Entry> {
    let (codes, viewers) = image.keys();
    codes
        .into_iter()
        .map(|c| (code_key(c), n))
        .chain(viewers.into_iter().map(|v| (viewer_key(v), n)))
        .collect()
}

/// Whether an error means the file is not there (deleted after its drop came back).
pub(super) fn is_gone(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(io) if io.kind() == std::io::ErrorKind::NotFound)
}

/// Writes archived drop `n` (durable by name once the caller fsyncs the directory).
pub(super) fn write_drop(dir: &Path, n: u64, image: &DropImage) -> Result<u64, StoreError> {
    let encode = |what, source| StoreError::Encode { what, source };
    let record = serde_json::to_vec(&image.record).map_err(|e| encode("an archived drop", e))?;
    let body = serde_json::to_vec(&image.body).map_err(|e| encode("an archived drop", e))?;
    Ok(files::replace(dir, &drop_name(n), |out| {
        out.write_all(&files::header(DROP_MAGIC, VERSION))?;
        files::write_frame(out, &record)?;
        files::write_frame(out, &body)
    })?)
}

/// The record of archived drop `n` alone (its first frame).
pub(super) fn read_record(dir: &Path, n: u64) -> Result<DropRecord, StoreError> {
    let path = dir.join(drop_name(n));
    let mut file = File::open(&path)?;
    let mut head = [0u8; HEADER + files::FRAME];
    file.read_exact(&mut head)
        .map_err(|_| files::corrupt(&path, 0, "an archived drop cut short", None))?;
    files::check_header(&head, DROP_MAGIC, VERSION, &path)?;
    let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let mut bytes = head.to_vec();
    bytes.resize(HEADER + files::FRAME + len, 0);
    file.read_exact(&mut bytes[HEADER + files::FRAME..])
        .map_err(|_| files::corrupt(&path, HEADER, "an archived drop cut short", None))?;
    let (payload, _) = files::frame_at(&bytes, HEADER, MAX_FRAME)
        .map_err(|what| files::corrupt(&path, HEADER, what, None))?;
    files::json(payload, &path)
}

/// Archived drop `n`, whole.
pub(super) fn read_drop(dir: &Path, n: u64) -> Result<DropImage, StoreError> {
    let path = dir.join(drop_name(n));
    let bytes = std::fs::read(&path)?;
    files::check_header(&bytes, DROP_MAGIC, VERSION, &path)?;
    let frames = files::frames(&bytes, MAX_FRAME, &path)?;
    let [record, body] = frames[..] else {
        return Err(files::corrupt(
            &path,
            0,
            "an archived drop without its two parts",
            None,
        ));
    };
    let record: DropRecord = files::json(record, &path)?;
    let body: ImageBody = files::json(body, &path)?;
    Ok(DropImage { record, body })
}

/// Which index is in force, as the snapshot names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IndexRef {
    pub(super) name: String,
    pub(super) entries: u64,
    pub(super) crc: u32,
}

/// An open index.
#[derive(Debug)]
pub(super) struct Index {
    path: PathBuf,
    entries: u64,
    file: Mutex<File>,
}

impl Index {
    /// Opens the index `r` names, checking its header and length, and with `verify` its
    /// checksum (reading it whole: on opening the store; not just after writing it).
    pub(super) fn open(dir: &Path, r: &IndexRef, verify: bool) -> Result<Index, StoreError> {
        let path = dir.join(&r.name);
        let mut file = File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                files::corrupt(
                    &path,
                    0,
                    "the archive's index the snapshot names is missing",
                    None,
                )
            } else {
                e.into()
            }
        })?;
        let mut head = [0u8; INDEX_HEADER as usize];
        file.read_exact(&mut head)
            .map_err(|_| files::corrupt(&path, 0, "an index cut short", None))?;
        files::check_header(&head, INDEX_MAGIC, VERSION, &path)?;
        let entries = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default());
        let len = file.metadata()?.len();
        if entries != r.entries || crc != r.crc || len != INDEX_HEADER + entries * ENTRY {
            return Err(files::corrupt(
                &path,
                0,
                "an index that is not the one the snapshot names",
                None,
            ));
        }
        if verify {
            verify_crc(&mut file, crc, &path)?;
        }
        Ok(Index {
            path,
            entries,
            file: Mutex::new(file),
        })
    }

    fn entry(file: &mut File, i: u64) -> std::io::Result<Entry> {
        let mut b = [0u8; ENTRY as usize];
        file.seek(SeekFrom::Start(INDEX_HEADER + i * ENTRY))?;
        file.read_exact(&mut b)?;
        let (k, n) = b.split_at(8);
        Ok((
            u64::from_le_bytes(k.try_into().unwrap_or_default()),
            u64::from_le_bytes(n.try_into().unwrap_or_default()),
        ))
    }

    /// The archived drops (file numbers) under `key`.
    pub(super) fn lookup(&self, key: u64) -> Result<Vec<u64>, StoreError> {
        let mut file = lock(&self.file);
        let (mut lo, mut hi) = (0, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if Index::entry(&mut file, mid)?.0 < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut found = Vec::new();
        while lo < self.entries {
            let (k, n) = Index::entry(&mut file, lo)?;
            if k != key {
                break;
            }
            found.push(n);
            lo += 1;
        }
        Ok(found)
    }

    /// Every entry, in order (read from a handle of its own).
    fn stream(&self) -> Result<impl Iterator<Item = std::io::Result<Entry>>, StoreError> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(INDEX_HEADER))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut left = self.entries;
        Ok(std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let mut b = [0u8; ENTRY as usize];
            Some(reader.read_exact(&mut b).map(|()| {
                let (k, n) = b.split_at(8);
                (
                    u64::from_le_bytes(k.try_into().unwrap_or_default()),
                    u64::from_le_bytes(n.try_into().unwrap_or_default()),
                )
            }))
        }))
    }
}

fn verify_crc(file: &mut File, crc: u32, path: &Path) -> Result<(), StoreError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hasher.finalize() != crc {
        return Err(files::corrupt(path, 0, "an index checksum mismatch", None));
    }
    Ok(())
}

/// Writes index generation `g`: the entries of `old` whose drop is in `keep`, merged with
/// `new`. Durable by name once the caller fsyncs the directory.
pub(super) fn write_index(
    dir: &Path,
    g: u64,
    old: Option<&Index>,
    keep: &HashSet<u64>,
    mut new: Vec<Entry>,
) -> Result<IndexRef, StoreError> {
    new.sort_unstable();
    new.dedup();
    let name = index_name(g);
    let mut old_entries = match old {
        Some(index) => Some(index.stream()?),
        None => None,
    };
    let mut next_old = || -> std::io::Result<Option<Entry>> {
        let Some(it) = old_entries.as_mut() else {
            return Ok(None);
        };
        for e in it.by_ref() {
            let e = e?;
            if keep.contains(&e.1) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    };
    let mut count = 0u64;
    let mut hasher = crc32fast::Hasher::new();
    files::replace(dir, &name, |out| {
        out.write_all(&[0u8; INDEX_HEADER as usize])?;
        let mut put = |out: &mut std::io::BufWriter<File>, (k, n): Entry| {
            let mut b = [0u8; ENTRY as usize];
            b[..8].copy_from_slice(&k.to_le_bytes());
            b[8..].copy_from_slice(&n.to_le_bytes());
            hasher.update(&b);
            count += 1;
            out.write_all(&b)
        };
        let mut fresh = new.into_iter().peekable();
        let mut o = next_old()?;
        loop {
            match (o, fresh.peek().copied()) {
                (Some(a), Some(b)) if a <= b => {
                    put(out, a)?;
                    o = next_old()?;
                }
                (_, Some(b)) => {
                    put(out, b)?;
                    fresh.next();
                }
                (Some(a), None) => {
                    put(out, a)?;
                    o = next_old()?;
                }
                (None, None) => break,
            }
        }
        let crc = hasher.clone().finalize();
        let mut head = files::header(INDEX_MAGIC, VERSION).to_vec();
        head.extend_from_slice(&count.to_le_bytes());
        head.extend_from_slice(&crc.to_le_bytes());
        head.extend_from_slice(&[0u8; 4]);
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&head)
    })?;
    Ok(IndexRef {
        name,
        entries: count,
        crc: hasher.finalize(),
    })
}

/// The archive's files: drop numbers and index names found in `dir`.
pub(super) fn list(dir: &Path) -> std::io::Result<(Vec<u64>, Vec<String>)> {
    let (mut drops, mut indexes) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(n) = drop_number(&name) {
            drops.push(n);
        } else if name.starts_with("index-") && name.ends_with(".dwi") {
            indexes.push(name);
        }
    }
    Ok((drops, indexes))
}
