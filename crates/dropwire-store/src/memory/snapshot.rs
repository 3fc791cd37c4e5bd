//! The snapshot file: the embedded store's whole state at one point of its journal, so
//! that start-up loads it and replays only the journal written after it.
//!
//! # Format (version 1)
//!
//! `DATA_DIR/snapshot.dws`: the header (magic `DWS\0`, version) and frames as in
//! [`crate::files`], each a JSON payload:
//!
//! 1. [`Meta`]: the first journal segment written after the snapshot (`segment`: opening
//!    replays it and every later one on top), the store's clock, the next archive file
//!    number, the archive's index in force (name, entry count, checksum), every archived
//!    drop (id, creation time, file number) and how many drop frames follow;
//! 2. one frame per drop held in memory: its whole state (see [`super::image`]).
//!
//! The file is written as `snapshot.dws.tmp`, fsync'd, renamed over `snapshot.dws`, and
//! the directory fsync'd (see [`crate::files`]). A `snapshot.dws.tmp` found at start-up is
//! a crash mid-snapshot and is deleted: the previous snapshot and the journal segments
//! after it, all still there, are the state. A `snapshot.dws` that cannot be read whole
//! (bad header, checksum, a frame missing) is [`StoreError::Corrupt`], never skipped: the
//! journal it replaced is gone.

use std::io::Write;
use std::path::Path;

use dropwire_core::DropId;
use serde::{Deserialize, Serialize};

use super::archive::IndexRef;
use super::image::DropImage;
use crate::error::StoreError;
use crate::files;

/// The snapshot's file name in the data dir.
pub const FILE_NAME: &str = "snapshot.dws";
const MAGIC: &[u8; 4] = b"DWS\0";
const VERSION: u32 = 1;
const MAX_FRAME: usize = u32::MAX as usize;

/// The snapshot's first frame.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Meta {
    /// The first journal segment written after the snapshot.
    pub(super) segment: u64,
    /// The latest time the store had been told about.
    pub(super) clock_ms: u64,
    /// The number the next archived drop's file gets.
    pub(super) next_file: u64,
    pub(super) index: Option<IndexRef>,
    pub(super) archived: Vec<ArchivedRef>,
    /// How many drop frames follow.
    pub(super) drops: u64,
}

/// A drop in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ArchivedRef {
    pub(super) id: DropId,
    pub(super) created_ms: u64,
    pub(super) file: u64,
}

/// Writes the snapshot and makes it durable; returns its length in bytes.
pub(super) fn write(dir: &Path, meta: &Meta, drops: &[DropImage]) -> Result<u64, StoreError> {
    let len = files::replace(dir, FILE_NAME, |out| {
        out.write_all(&files::header(MAGIC, VERSION))?;
        let meta = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        files::write_frame(out, &meta)?;
        // One drop at a time: the snapshot is never whole in memory as JSON.
        for image in drops {
            let payload = serde_json::to_vec(image).map_err(std::io::Error::other)?;
            files::write_frame(out, &payload)?;
        }
        Ok(())
    })?;
    files::sync_dir(dir)?;
    Ok(len)
}

/// Reads the snapshot in `dir`, if there is one.
pub(super) fn read(dir: &Path) -> Result<Option<(Meta, Vec<DropImage>)>, StoreError> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    files::check_header(&bytes, MAGIC, VERSION, &path)?;
    let frames = files::frames(&bytes, MAX_FRAME, &path)?;
    let Some((first, rest)) = frames.split_first() else {
        return Err(files::corrupt(&path, 0, "a snapshot cut short", None));
    };
    let meta: Meta = files::json(first, &path)?;
    if rest.len() as u64 != meta.drops {
        return Err(files::corrupt(
            &path,
            bytes.len(),
            "a snapshot cut short",
            None,
        ));
    }
    let drops = rest
        .iter()
        .map(|frame| files::json(frame, &path))
        .collect::<Result<Vec<DropImage>, _>>()?;
    Ok(Some((meta, drops)))
}
