//! What the snapshot and archive tests share: a store over a data dir, drops with a
//! history, the answers a drop gives, the files of a data dir.

pub use std::collections::BTreeMap;
pub use std::io::Write;
pub use std::path::{Path, PathBuf};

pub use dropwire_core::{
    ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlAction, ControlEntry, DropId,
};
pub use dropwire_store::conformance::{self, fresh_id, record};
pub use dropwire_store::{
    ClaimRequest, CouponOutcome, CouponRequest, DropFigures, MemoryStore, MemoryStoreConfig,
    SnapshotPolicy, Store, StoreError,
};

pub const T0: u64 = 1_800_000_000_000;

pub fn open(dir: &Path) -> Result<MemoryStore, StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.to_owned()),
        fsync: true,
        snapshots: SnapshotPolicy::on_settle_only(),
    })
}

/// `viewer` asks for a mug.
pub fn req(drop: &DropId, viewer: &str, rid: &str, now_ms: u64) -> ClaimRequest {
    conformance::req(drop, "mug", viewer, rid, now_ms)
}

pub fn coupon(drop: &DropId, viewer: &str, limit: u32) -> CouponRequest {
    CouponRequest {
        drop_id: drop.clone(),
        coupon: "s1".into(),
        limit,
        viewer_id: viewer.into(),
        now_ms: T0 + 50,
    }
}

pub async fn control(store: &MemoryStore, id: &DropId, at_ms: u64, action: ControlAction) {
    let len = store.drop_record(id).await.unwrap().unwrap().log.len();
    store
        .append_control(id, len, ControlEntry { at_ms, action })
        .await
        .unwrap();
}

/// A drop with claims by `viewers` (the first redeemed, the others expired), a coupon, a
/// member, sequence numbers; closed if `close`.
pub async fn drop_with_history(
    store: &MemoryStore,
    name: &str,
    viewers: &[&str],
    close: bool,
) -> DropId {
    let id = fresh_id(name);
    store.create_drop(record(&id, 10, 1, 60)).await.unwrap();
    control(store, &id, T0, ControlAction::Start).await;
    for v in viewers {
        let out = store.claim(req(&id, v, "r1", T0 + 10)).await.unwrap();
        assert!(matches!(out, ClaimOutcome::Granted(_)), "{out:?}");
    }
    let claims = store.claims(&id).await.unwrap();
    store.redeem(&claims[0].code, T0 + 20).await.unwrap();
    store.take_coupon(coupon(&id, viewers[0], 1)).await.unwrap();
    store.admit(&id, viewers[0]).await.unwrap();
    store.reserve_seq(&id, 100).await.unwrap();
    if close {
        control(store, &id, T0 + 1000, ControlAction::Close).await;
        store.expire_due(T0 + 61_000).await.unwrap();
    }
    id
}

/// Everything a drop answers through the reads of the trait.
#[derive(Debug, PartialEq)]
pub struct Answers {
    pub record: dropwire_core::DropRecord,
    pub claims: Vec<dropwire_core::Claim>,
    pub figures: DropFigures,
}

pub async fn answers(store: &MemoryStore, id: &DropId) -> Answers {
    Answers {
        record: store.drop_record(id).await.unwrap().unwrap(),
        claims: store.claims(id).await.unwrap(),
        figures: store.figures(id).await.unwrap(),
    }
}

/// The answers to every code of a drop's claims when redeemed again.
pub async fn redeem_errors(store: &MemoryStore, codes: &[ClaimCode]) -> Vec<String> {
    let mut out = Vec::new();
    for code in codes {
        let e = store.redeem(code, T0 + 99_000).await.unwrap_err();
        assert!(matches!(e, StoreError::NotHeld { .. }), "{e:?}");
        out.push(format!("{e:?}"));
    }
    out
}

pub fn files_in(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let name = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, e.metadata().unwrap().len());
            }
        }
    }
    out
}

pub fn copy_dir(from: &Path, to: &Path) {
    for name in files_in(from).keys() {
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(name), target).unwrap();
    }
}

pub fn holds_bytes(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_in(dir)
        .into_keys()
        .map(|n| dir.join(n))
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}
