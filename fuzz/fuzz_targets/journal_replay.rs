//! The embedded store opening a journal: any bytes as `journal.dwj` open to a store or to
//! a clean error, never a panic.
//!
//! Input: the journal file as it is; or, when it starts with `F`, lines of JSON that are
//! framed here as the writer frames them (length, CRC-32), so the fuzzer reaches the
//! replay of well-formed records without having to forge checksums. A store that opened
//! (and cut off a torn tail) opens again to the same state, answers what the hub asks at
//! start-up, and expires its holds.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use dropwire_core::{DropRecord, TimelineView};
use dropwire_store::journal::{FILE_NAME, VERSION};
use dropwire_store::{DropFigures, MemoryStore, MemoryStoreConfig, Store};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("dropwire-fuzz-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// Frames each line of `lines` as one journal record, after the header.
fn framed(lines: &[u8]) -> Vec<u8> {
    let mut out = b"DWJ\0".to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    for payload in lines.split(|&b| b == b'\n') {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

fn open() -> Result<MemoryStore, dropwire_store::StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir().clone()),
        fsync: false,
        ..MemoryStoreConfig::default()
    })
}

/// What a restart must keep: every drop with its log, claims and figures.
type State = Vec<(DropRecord, Vec<dropwire_core::Claim>, DropFigures)>;

async fn state(store: &MemoryStore) -> State {
    let mut drops = store.list_drops().await.expect("list_drops");
    drops.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = Vec::new();
    for record in drops {
        let mut claims = store.claims(&record.id).await.expect("claims");
        claims.sort_by(|a, b| a.code.cmp(&b.code));
        let figures = store.figures(&record.id).await.expect("figures");
        out.push((record, claims, figures));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.split_first() {
        Some((b'F', lines)) => framed(lines),
        _ => data.to_vec(),
    };
    let path = dir().join(FILE_NAME);
    std::fs::write(&path, &bytes).expect("write the journal");
    let store = match open() {
        Ok(store) => store,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    // Opening changed the file (a torn tail cut off, a torn header written anew): the store
    // opened from what is left must be the same. (An unchanged file reads the same anyway;
    // opening a store is costly, so only then.)
    let changed = std::fs::metadata(&path).map_or(true, |m| m.len() != bytes.len() as u64);
    runtime().block_on(async {
        let mut after = state(&store).await;
        let store = if changed {
            drop(store);
            let store = open().expect("a journal that opened opens again");
            let before = std::mem::replace(&mut after, state(&store).await);
            assert_eq!(before.len(), after.len());
            for (a, b) in before.iter().zip(&after) {
                assert_eq!(a, b, "a reopened store differs");
            }
            store
        } else {
            store
        };
        for (record, _, _) in &after {
            let _ = record.spec.validate();
            for now in [0, record.created_ms, u64::MAX] {
                let _ = TimelineView::compute(&record.spec.script, &record.log, now);
            }
        }
        // Written to the journal (and awaited: nothing is in flight when the next input
        // overwrites the file).
        let _ = store.expire_due(u64::MAX).await;
        let _ = store.ping().await;
    });
});
