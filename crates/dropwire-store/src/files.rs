//! What the embedded store's files share: a header, checksummed frames, and replacing a
//! file whole.
//!
//! Every file starts with an 8-byte header: a 4-byte magic (`DWJ\0` a journal segment,
//! `DWS\0` a snapshot, `DWA\0` an archived drop, `DWI\0` the archive's index) and the
//! format version as a little-endian `u32`. Journal segments, snapshots and archived drops
//! then hold frames back to back:
//!
//! ```text
//! [len: u32 LE][crc32 (IEEE) of the payload: u32 LE][payload: len bytes of JSON]
//! ```
//!
//! Snapshots, archived drops and indexes are never changed in place: each is written whole
//! under a temporary name (`NAME.tmp`), fsync'd, renamed over `NAME`, and then the
//! directory is fsync'd, so a reader (or a restart after a crash at any point) finds the
//! old file or the new one, never part of one. A leftover `*.tmp` is the trace of a crash
//! mid-write and is deleted when the store opens.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::StoreError;

pub(crate) const HEADER: usize = 8;
pub(crate) const FRAME: usize = 8;
/// The suffix of a file being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

pub(crate) fn header(magic: &[u8; 4], version: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(magic);
    h[4..].copy_from_slice(&version.to_le_bytes());
    h
}

/// Checks a file's header: a foreign magic is [`StoreError::Corrupt`], another version
/// [`StoreError::JournalVersion`] (the store's format version, whichever file it is).
pub(crate) fn check_header(
    bytes: &[u8],
    magic: &[u8; 4],
    version: u32,
    path: &Path,
) -> Result<(), StoreError> {
    if bytes.len() < HEADER || &bytes[..4] != magic {
        tracing::error!(path = %path.display(), "not a dropwire file of this kind (wrong magic)");
        return Err(StoreError::Corrupt {
            offset: 0,
            what: "not a dropwire file of this kind (wrong magic)",
            source: None,
        });
    }
    let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if found != version {
        return Err(StoreError::JournalVersion {
            path: path.display().to_string(),
            found,
            expected: version,
        });
    }
    Ok(())
}

/// Writes one frame around `payload`.
pub(crate) fn write_frame<W: Write>(out: &mut W, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("a frame over 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
    out.write_all(payload)
}

/// The payload of a well-framed frame at `at` whose checksum matches, and where it ends.
pub(crate) fn frame_at(
    bytes: &[u8],
    at: usize,
    max: usize,
) -> Result<(&[u8], usize), &'static str> {
    let Some(head) = bytes.get(at..at.saturating_add(FRAME)) else {
        return Err("a record header cut short");
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > max {
        return Err("a record length over the limit");
    }
    let end = at + FRAME + len;
    let Some(payload) = bytes.get(at + FRAME..end) else {
        return Err("a record cut short");
    };
    if crc32fast::hash(payload) != crc {
        return Err("a checksum mismatch");
    }
    Ok((payload, end))
}

/// Reads the frames of a whole file after its header, strictly: any damage is
/// [`StoreError::Corrupt`] (these files are renamed into place only once complete).
pub(crate) fn frames<'a>(
    bytes: &'a [u8],
    max: usize,
    path: &Path,
) -> Result<Vec<&'a [u8]>, StoreError> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at < bytes.len() {
        match frame_at(bytes, at, max) {
            Ok((payload, end)) => {
                out.push(payload);
                at = end;
            }
            Err(what) => return Err(corrupt(path, at, what, None)),
        }
    }
    Ok(out)
}

/// A [`StoreError::Corrupt`] for `path`, logged with the file's name (the error has none).
pub(crate) fn corrupt(
    path: &Path,
    offset: usize,
    what: &'static str,
    source: Option<serde_json::Error>,
) -> StoreError {
    tracing::error!(path = %path.display(), offset, what, "a dropwire file is damaged");
    StoreError::Corrupt {
        offset: offset as u64,
        what,
        source,
    }
}

/// Parses one JSON payload of `path`.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    path: &Path,
) -> Result<T, StoreError> {
    serde_json::from_slice(payload).map_err(|e| {
        corrupt(
            path,
            0,
            "a record that is not what this build wrote",
            Some(e),
        )
    })
}

/// fsyncs a directory, so that the names created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `dir/name` whole: `fill` writes the contents into `name.tmp`, which is fsync'd
/// and renamed over `name`; the directory is fsync'd by the caller (once for many files).
/// Returns the file's length.
pub(crate) fn replace(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<u64> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    fill(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let len = file.metadata()?.len();
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(len)
}

/// Deletes every `*.tmp` in `dir` (a crash's half-written files).
pub(crate) fn remove_tmp(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            tracing::warn!(path = %entry.path().display(), "removing a half-written file (a crash mid-snapshot)");
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
