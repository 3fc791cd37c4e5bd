//! The journal: replay gives back the same state; a torn tail is dropped; corruption and
//! a foreign version are refused; any interleaving keeps the stock accounting.

use std::collections::HashMap;
use std::io::Write;

use dropwire_core::{ClaimCode, ClaimOutcome, ClaimState, ControlAction, ControlEntry, DropId};
use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::{ClaimRequest, MemoryStore, MemoryStoreConfig, Store, StoreError};
use proptest::prelude::*;

const T0: u64 = 1_800_000_000_000;

fn open(dir: &std::path::Path) -> Result<MemoryStore, StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.to_owned()),
        fsync: true,
    })
}

fn req(drop: &DropId, viewer: &str, rid: &str, now_ms: u64) -> ClaimRequest {
    ClaimRequest {
        drop_id: drop.clone(),
        sku: "mug".into(),
        viewer_id: viewer.into(),
        handle: viewer.into(),
        rid: rid.into(),
        now_ms,
    }
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
            let store = MemoryStore::open(MemoryStoreConfig { data_dir: Some(dir.path().to_owned()), fsync: false }).unwrap();
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
            let replayed = MemoryStore::open(MemoryStoreConfig { data_dir: Some(dir.path().to_owned()), fsync: false }).unwrap();
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
