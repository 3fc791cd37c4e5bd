//! The journal: replay gives back the same state; a torn tail is dropped; corruption and
//! a foreign version are refused; any interleaving keeps the stock accounting.

use std::collections::HashMap;
use std::io::Write;

use dropwire_core::{ClaimCode, ClaimOutcome, ClaimState, ControlAction, ControlEntry, DropId};
use dropwire_store::conformance::{award, fresh_id, record};
use dropwire_store::{AwardOutcome, MemoryStore, MemoryStoreConfig, Store, StoreError};
use proptest::prelude::*;

use super::history::{T0, req};

fn open(dir: &std::path::Path) -> Result<MemoryStore, StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.to_owned()),
        fsync: true,
        ..MemoryStoreConfig::default()
    })
}

async fn populate(store: &MemoryStore) -> DropId {
    let id = fresh_id("journal");
    store.create_drop(record(&id, 5, 1, 60)).await.unwrap();
    store
        .append_control(
            &id,
            0,
            ControlEntry {
                at_ms: T0,
                action: ControlAction::Start,
            },
        )
        .await
        .unwrap();
    for v in ["ana", "bo", "cy"] {
        store.claim(req(&id, v, "r", T0)).await.unwrap();
    }
    let claims = store.claims(&id).await.unwrap();
    store.redeem(&claims[0].code, T0 + 10).await.unwrap();
    store.reserve_seq(&id, 1000).await.unwrap();
    let quest = award(&id, "s2", "dee", "q", T0 + 150);
    assert_eq!(
        store.award(quest).await.unwrap(),
        AwardOutcome::Awarded { points: 50 }
    );
    id
}

#[tokio::test]
async fn reopening_replays_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = populate(&store).await;
    store.expire_due(T0 + 60_000).await.unwrap();
    let (claims, figures, record) = (
        store.claims(&id).await.unwrap(),
        store.figures(&id).await.unwrap(),
        store.drop_record(&id).await.unwrap(),
    );
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(again.claims(&id).await.unwrap(), claims);
    assert_eq!(again.figures(&id).await.unwrap(), figures);
    assert_eq!(again.drop_record(&id).await.unwrap(), record);
    assert_eq!(
        figures.stock[0].left, 4,
        "one redeemed, two expired back to stock"
    );
    assert!(
        again.reserve_seq(&id, 10).await.unwrap() >= 1001,
        "sequence numbers never repeat"
    );
    // The same rid after a restart gets the same claim.
    let before = claims.iter().find(|c| c.viewer_id == "bo").unwrap().clone();
    let retry = again.claim(req(&id, "bo", "r", T0 + 70_000)).await.unwrap();
    assert_eq!(retry, ClaimOutcome::Granted(before));
    // Expired holds' points stay off the board, a quest's stay on it, and it stays earned.
    let board: Vec<_> = figures
        .leaderboard
        .iter()
        .map(|e| (e.handle.as_str(), e.points))
        .collect();
    assert_eq!(board, [("@ana", 100), ("@dee", 50)]);
    let quest = |rid: &str| award(&id, "s2", "dee", rid, T0 + 160);
    assert_eq!(
        again.award(quest("q")).await.unwrap(),
        AwardOutcome::Awarded { points: 50 }
    );
    assert_eq!(
        again.award(quest("q2")).await.unwrap(),
        AwardOutcome::AlreadyAwarded
    );
}

#[tokio::test]
async fn the_segment_and_an_erasure_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = populate(&store).await;
    store.admit(&id, "dee").await.unwrap();
    store.admit(&id, "ana").await.unwrap();
    assert_eq!(store.erase_viewer("ana", "erased-1").await.unwrap(), 1);
    let (claims, figures) = (
        store.claims(&id).await.unwrap(),
        store.figures(&id).await.unwrap(),
    );
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(again.claims(&id).await.unwrap(), claims);
    assert_eq!(again.figures(&id).await.unwrap(), figures);
    assert!(claims.iter().all(|c| c.viewer_id != "ana"));
    let early = |viewer: &str| {
        let mut r = req(&id, viewer, "e1", T0 + 20);
        r.members_only = true;
        r
    };
    assert!(matches!(
        again.claim(early("dee")).await.unwrap(),
        ClaimOutcome::Granted(_)
    ));
    assert_eq!(
        again.claim(early("ana")).await.unwrap(),
        ClaimOutcome::Refused(dropwire_core::ClaimReason::NotOpen),
        "the erased id is no longer a member"
    );
    assert_eq!(
        again.claim(early("erased-1")).await.unwrap(),
        ClaimOutcome::Refused(dropwire_core::ClaimReason::LimitReached),
        "its tombstone is, with its claim"
    );
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = populate(&store).await;
    let claims = store.claims(&id).await.unwrap();
    drop(store);
    let path = dir.path().join("journal.dwj");
    let good_len = std::fs::metadata(&path).unwrap().len();
    // A crash mid-write: a length that promises more bytes than were written.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&500u32.to_le_bytes()).unwrap();
    f.write_all(&[1, 2, 3, 4, b'{', b'"']).unwrap();
    drop(f);
    let again = open(dir.path()).unwrap();
    assert_eq!(again.claims(&id).await.unwrap(), claims);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good_len,
        "the torn tail was cut off"
    );
    // And it keeps working: a new claim is journaled after the good records.
    again.claim(req(&id, "dee", "r", T0)).await.unwrap();
    drop(again);
    assert_eq!(
        open(dir.path()).unwrap().claims(&id).await.unwrap().len(),
        4
    );
}

#[tokio::test]
async fn a_bad_record_in_the_middle_is_corruption_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    populate(&store).await;
    drop(store);
    let path = dir.path().join("journal.dwj");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0x5a; // inside the first record's payload
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));

    std::fs::write(&path, b"DWJ\0\x09\x00\x00\x00").unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(StoreError::JournalVersion { found: 9, .. })
    ));
}

/// Where each record of a journal starts.
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        starts.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    starts
}

/// A well-framed record around `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn any_damaged_tail_is_cut_off_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = populate(&store).await;
    let claims = store.claims(&id).await.unwrap();
    drop(store);
    let path = dir.path().join("journal.dwj");
    let pristine = std::fs::read(&path).unwrap();
    // The last record is the sequence reservation; cutting it keeps every claim.
    let last = *record_starts(&pristine).last().unwrap();
    let mut flipped = pristine.clone();
    flipped[last + 12] ^= 0x20;
    let cases = [
        (
            "garbage",
            [&pristine[..], b"\xde\xad\xbe\xef not a record"].concat(),
            pristine.len(),
        ),
        (
            "zeros",
            [&pristine[..], &[0u8; 64][..]].concat(),
            pristine.len(),
        ),
        (
            "half a header",
            [&pristine[..], &[5u8, 0, 0][..]].concat(),
            pristine.len(),
        ),
        ("a flipped byte in the last record", flipped, last),
        (
            "a checksummed record of unknown JSON",
            [&pristine[..], &frame(b"{\"t\":\"nope\"}")[..]].concat(),
            pristine.len(),
        ),
    ];
    for (what, bytes, good_len) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let again = open(dir.path()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            good_len,
            "{what}"
        );
        assert_eq!(again.claims(&id).await.unwrap(), claims, "{what}");
    }
}

#[tokio::test]
async fn a_bad_length_or_magic_is_corruption_and_a_torn_header_a_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    populate(&store).await;
    drop(store);
    let path = dir.path().join("journal.dwj");
    let pristine = std::fs::read(&path).unwrap();
    // The first record's length now runs past the end of the file, but good records
    // follow it: that is damage, not a torn tail.
    let mut long = pristine.clone();
    long[8..12].copy_from_slice(&(1u32 << 20).to_le_bytes());
    std::fs::write(&path, &long).unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(StoreError::Corrupt { offset: 8, .. })
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        long,
        "a damaged journal is left as it is"
    );

    let mut magic = pristine.clone();
    magic[0] = b'X';
    std::fs::write(&path, &magic).unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(StoreError::Corrupt { offset: 0, .. })
    ));

    // A crash while the header of a new journal was being written.
    std::fs::write(&path, b"DW").unwrap();
    let fresh = open(dir.path()).unwrap();
    assert!(fresh.list_drops().await.unwrap().is_empty());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
}

#[derive(Debug, Clone)]
enum Op {
    Claim { viewer: u8 },
    Redeem { pick: u8 },
    Advance { s: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..12).prop_map(|viewer| Op::Claim { viewer }),
        2 => any::<u8>().prop_map(|pick| Op::Redeem { pick }),
        2 => (1u16..90).prop_map(|s| Op::Advance { s }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any interleaving of claims, redemptions and expiries keeps left + held + redeemed
    /// = initial stock, and no viewer over its limit — also after replaying the journal.
    #[test]
    fn stock_accounting_holds_under_any_interleaving(ops in prop::collection::vec(op(), 1..60), stock in 1u32..8, limit in 1u32..3) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let store = MemoryStore::open(MemoryStoreConfig { data_dir: Some(dir.path().to_owned()), fsync: false, ..MemoryStoreConfig::default() }).unwrap();
            let id = fresh_id("prop");
            store.create_drop(record(&id, stock, limit, 60)).await.unwrap();
            let mut now = T0;
            let mut rid = 0;
            for op in ops {
                match op {
                    Op::Claim { viewer } => {
                        rid += 1;
                        store.claim(req(&id, &format!("v{viewer}"), &format!("r{rid}"), now)).await.unwrap();
                    }
                    Op::Redeem { pick } => {
                        let claims = store.claims(&id).await.unwrap();
                        if !claims.is_empty() {
                            let code: ClaimCode = claims[pick as usize % claims.len()].code.clone();
                            let _ = store.redeem(&code, now).await;
                        }
                    }
                    Op::Advance { s } => {
                        now += u64::from(s) * 1000;
                        store.expire_due(now).await.unwrap();
                    }
                }
                check(&store, &id, stock, limit).await;
            }
            drop(store);
            let replayed = MemoryStore::open(MemoryStoreConfig { data_dir: Some(dir.path().to_owned()), fsync: false, ..MemoryStoreConfig::default() }).unwrap();
            check(&replayed, &id, stock, limit).await;
        });
    }
}

async fn check(store: &MemoryStore, id: &DropId, stock: u32, limit: u32) {
    let f = store.figures(id).await.unwrap();
    let claims = store.claims(id).await.unwrap();
    let held = claims
        .iter()
        .filter(|c| c.state == ClaimState::Held)
        .count() as u32;
    let redeemed = claims
        .iter()
        .filter(|c| c.state == ClaimState::Redeemed)
        .count() as u32;
    assert_eq!(f.stock[0].left + held + redeemed, stock, "{claims:?}");
    let mut live: HashMap<&str, u32> = HashMap::new();
    for c in claims.iter().filter(|c| c.state != ClaimState::Expired) {
        *live.entry(c.viewer_id.as_str()).or_default() += 1;
    }
    assert!(live.values().all(|n| *n <= limit), "{live:?}");
}
