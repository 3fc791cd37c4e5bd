//! Reading the journal's segments on opening: each record checked against its checksum, a
//! torn tail of the last segment cut off, damage anywhere else refused (see the rules in
//! [`super`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::de::DeserializeOwned;

use super::{MAGIC, MAX_RECORD, VERSION};
use crate::error::StoreError;
use crate::files::{self, FRAME, HEADER};

/// Reads one segment's records into `records`; returns the file (open for writing if it is
/// the last) and where its good records end. Only the last may be initialised or cut.
pub(super) fn read_segment<R: DeserializeOwned>(
    path: &Path,
    last: bool,
    records: &mut Vec<R>,
) -> Result<(File, usize), StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(last)
        .create(last)
        .truncate(false)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let header = files::header(MAGIC, VERSION);
    if last && bytes.len() < HEADER && header.starts_with(&bytes) {
        // New, or a crash while the header was being written.
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        if let Some(dir) = path.parent() {
            files::sync_dir(dir)?;
        }
        bytes = header.to_vec();
    }
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(files::corrupt(
            path,
            0,
            "not a dropwire journal (wrong magic)",
            None,
        ));
    }
    files::check_header(&bytes, MAGIC, VERSION, path)?;
    let (mut found, good_end) = parse(&bytes)?;
    records.append(&mut found);
    if good_end < bytes.len() {
        if !last {
            return Err(files::corrupt(
                path,
                good_end,
                "a journal segment that a later one follows ends in a damaged record",
                None,
            ));
        }
        tracing::warn!(
            path = %path.display(),
            at = good_end,
            dropped_bytes = bytes.len() - good_end,
            "the journal ends in a torn record (a crash mid-write); cutting it off"
        );
        file.set_len(good_end as u64)?;
        file.sync_all()?;
    }
    Ok((file, good_end))
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

fn record_at<R: DeserializeOwned>(bytes: &[u8], at: usize) -> Result<(R, usize), Bad> {
    let (payload, end) =
        files::frame_at(bytes, at, MAX_RECORD).map_err(|what| Bad { what, json: None })?;
    let record = serde_json::from_slice(payload).map_err(|e| Bad {
        what: "a record that is not a change this build knows",
        json: Some(e),
    })?;
    Ok((record, end))
}

/// Whether a well-framed JSON record starts anywhere at or after `from`.
fn good_frame_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(FRAME)).any(|i| {
        bytes.get(i + FRAME) == Some(&b'{')
            && files::frame_at(bytes, i, MAX_RECORD)
                .is_ok_and(|(p, _)| serde_json::from_slice::<serde::de::IgnoredAny>(p).is_ok())
    })
}
