//! Snapshots, journal truncation and the archive of the embedded store: a restart after a
//! snapshot gives back the same state; a crash at any step of a snapshot reopens to the
//! acknowledged state; damage is refused, never skipped; settled drops leave memory and
//! still answer every method as before; an erasure reaches them and survives a restart.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use dropwire_core::{
    ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlAction, ControlEntry, DropId,
};
use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::{
    ClaimRequest, CouponOutcome, CouponRequest, DropFigures, MemoryStore, MemoryStoreConfig,
    SnapshotPolicy, Store, StoreError,
};

const T0: u64 = 1_800_000_000_000;

fn open(dir: &Path) -> Result<MemoryStore, StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.to_owned()),
        fsync: true,
        snapshots: SnapshotPolicy::on_settle_only(),
    })
}

fn req(drop: &DropId, viewer: &str, rid: &str, now_ms: u64) -> ClaimRequest {
    ClaimRequest {
        drop_id: drop.clone(),
        sku: "mug".into(),
        viewer_id: viewer.into(),
        handle: format!("@{viewer}"),
        rid: rid.into(),
        now_ms,
        refusal: None,
        members_only: false,
    }
}

fn coupon(drop: &DropId, viewer: &str, limit: u32) -> CouponRequest {
    CouponRequest {
        drop_id: drop.clone(),
        coupon: "s1".into(),
        limit,
        viewer_id: viewer.into(),
        now_ms: T0 + 50,
    }
}

async fn control(store: &MemoryStore, id: &DropId, at_ms: u64, action: ControlAction) {
    let len = store.drop_record(id).await.unwrap().unwrap().log.len();
    store
        .append_control(id, len, ControlEntry { at_ms, action })
        .await
        .unwrap();
}

/// A drop with claims by `viewers` (the first redeemed, the others expired), a coupon, a
/// member, sequence numbers; closed if `close`.
async fn drop_with_history(
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
struct Answers {
    record: dropwire_core::DropRecord,
    claims: Vec<dropwire_core::Claim>,
    figures: DropFigures,
}

async fn answers(store: &MemoryStore, id: &DropId) -> Answers {
    Answers {
        record: store.drop_record(id).await.unwrap().unwrap(),
        claims: store.claims(id).await.unwrap(),
        figures: store.figures(id).await.unwrap(),
    }
}

/// The answers to every code of a drop's claims when redeemed again.
async fn redeem_errors(store: &MemoryStore, codes: &[ClaimCode]) -> Vec<String> {
    let mut out = Vec::new();
    for code in codes {
        let e = store.redeem(code, T0 + 99_000).await.unwrap_err();
        assert!(matches!(e, StoreError::NotHeld { .. }), "{e:?}");
        out.push(format!("{e:?}"));
    }
    out
}

fn files_in(dir: &Path) -> BTreeMap<String, u64> {
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

fn copy_dir(from: &Path, to: &Path) {
    for name in files_in(from).keys() {
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(name), target).unwrap();
    }
}

#[tokio::test]
async fn a_restart_after_a_snapshot_replays_only_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let live = drop_with_history(&store, "restart", &["ana", "bo", "cy"], false).await;
    let report = store.snapshot_now().unwrap();
    assert_eq!(
        (report.segment, report.resident, report.archived),
        (1, 1, 0)
    );
    let names = files_in(dir.path());
    assert!(
        !names.contains_key("journal.dwj"),
        "segment 0 is truncated: {names:?}"
    );
    assert!(names.contains_key("journal-1.dwj") && names.contains_key("snapshot.dws"));
    // After the snapshot: more claims, an expiry, a control entry.
    store
        .claim(req(&live, "dee", "r1", T0 + 100))
        .await
        .unwrap();
    store.expire_due(T0 + 61_000).await.unwrap();
    control(&store, &live, T0 + 62_000, ControlAction::Pause).await;
    let before = answers(&store, &live).await;
    let seq = store.reserve_seq(&live, 10).await.unwrap();
    drop(store);

    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &live).await, before);
    assert_eq!(again.residency().holds, 0);
    assert!(again.reserve_seq(&live, 10).await.unwrap() >= seq + 10);
    let bo = before
        .claims
        .iter()
        .find(|c| c.viewer_id == "bo")
        .unwrap()
        .clone();
    let retry = again
        .claim(req(&live, "bo", "r1", T0 + 70_000))
        .await
        .unwrap();
    assert_eq!(retry, ClaimOutcome::Granted(bo));
}

#[tokio::test]
async fn holds_survive_a_snapshot_and_expire_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = fresh_id("holds");
    store.create_drop(record(&id, 5, 1, 60)).await.unwrap();
    for v in ["ana", "bo"] {
        store.claim(req(&id, v, "r", T0)).await.unwrap();
    }
    store.snapshot_now().unwrap();
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(again.residency().holds, 2);
    assert!(again.expire_due(T0 + 59_999).await.unwrap().is_empty());
    let expired = again.expire_due(T0 + 60_000).await.unwrap();
    assert_eq!(expired.len(), 2);
    assert_eq!(again.figures(&id).await.unwrap().stock[0].left, 5);
}

/// The data dir as a crash between a snapshot's rotation and its rename leaves it: the
/// old snapshot, every segment since, and a half-written new snapshot.
#[tokio::test]
async fn a_crash_mid_snapshot_reopens_to_the_acknowledged_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = drop_with_history(&store, "crash-a", &["ana", "bo"], false).await;
    let b = drop_with_history(&store, "crash-b", &["cy", "dee"], false).await;
    store.snapshot_now().unwrap();
    // More changes in segment 1 (drop a closes and settles), then a copy of the dir as it
    // is before the next round.
    control(&store, &a, T0 + 1000, ControlAction::Close).await;
    store.expire_due(T0 + 61_000).await.unwrap();
    store
        .claim(req(&b, "eve", "r1", T0 + 61_500))
        .await
        .unwrap();
    let before_round = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), before_round.path());
    let report = store.snapshot_now().unwrap();
    assert_eq!((report.segment, report.archived_now), (2, 1));
    // And changes after the round, in segment 2.
    store
        .claim(req(&b, "fay", "r1", T0 + 61_600))
        .await
        .unwrap();
    store.reserve_seq(&a, 5).await.unwrap();
    let (wa, wb) = (answers(&store, &a).await, answers(&store, &b).await);
    drop(store);

    // Crash after the rotation and the archive files, before the rename.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    let new_snapshot = std::fs::read(dir.path().join("snapshot.dws")).unwrap();
    std::fs::write(
        crashed.path().join("snapshot.dws"),
        std::fs::read(before_round.path().join("snapshot.dws")).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        before_round.path().join("journal-1.dwj"),
        crashed.path().join("journal-1.dwj"),
    )
    .unwrap();
    std::fs::write(
        crashed.path().join("snapshot.dws.tmp"),
        &new_snapshot[..new_snapshot.len() / 2],
    )
    .unwrap();
    let reopened = open(crashed.path()).unwrap();
    assert_eq!(answers(&reopened, &a).await, wa);
    assert_eq!(answers(&reopened, &b).await, wb);
    let names = files_in(crashed.path());
    assert!(!names.contains_key("snapshot.dws.tmp"), "{names:?}");
    assert_eq!(
        names
            .keys()
            .filter(|n| n.starts_with("archive/") && n.ends_with(".dwa"))
            .count(),
        0,
        "the unnamed archive file of the interrupted round is gone: {names:?}"
    );
    drop(reopened);

    // Crash after the rename, before the old segment and files were deleted.
    let late = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), late.path());
    std::fs::copy(
        before_round.path().join("journal-1.dwj"),
        late.path().join("journal-1.dwj"),
    )
    .unwrap();
    std::fs::write(
        late.path().join("archive/00000000000000ff.dwa"),
        b"DWA\0junk",
    )
    .unwrap();
    std::fs::write(late.path().join("archive/index-99.dwi"), b"DWI\0junk").unwrap();
    let reopened = open(late.path()).unwrap();
    assert_eq!(answers(&reopened, &a).await, wa);
    assert_eq!(answers(&reopened, &b).await, wb);
    let names = files_in(late.path());
    assert!(!names.contains_key("journal-1.dwj"), "{names:?}");
    assert!(
        !names.contains_key("archive/00000000000000ff.dwa"),
        "{names:?}"
    );
    assert!(!names.contains_key("archive/index-99.dwi"), "{names:?}");
}

#[tokio::test]
async fn a_damaged_snapshot_or_archive_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = drop_with_history(&store, "damaged", &["ana", "bo"], true).await;
    drop_with_history(&store, "damaged-open", &["cy"], false).await;
    store.snapshot_now().unwrap();
    drop(store);
    let path = dir.path().join("snapshot.dws");
    let pristine = std::fs::read(&path).unwrap();
    let mut flipped = pristine.clone();
    flipped[20] ^= 0x40;
    for (what, bytes) in [
        ("cut in a frame", pristine[..pristine.len() - 7].to_vec()),
        ("a flipped byte", flipped),
        ("no frame at all", pristine[..8].to_vec()),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let e = open(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{what}: {e:?}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: left as it is"
        );
    }
    let mut version = pristine.clone();
    version[4] = 9;
    std::fs::write(&path, &version).unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(StoreError::JournalVersion { found: 9, .. })
    ));
    std::fs::write(&path, &pristine).unwrap();

    // The archive's index, damaged: refused on opening.
    let names = files_in(dir.path());
    let index = names.keys().find(|n| n.contains("index-")).unwrap().clone();
    let mut bytes = std::fs::read(dir.path().join(&index)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join(&index), &bytes).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
    bytes[last] ^= 1;
    std::fs::write(dir.path().join(&index), &bytes).unwrap();

    // An archived drop's file, damaged: its drop's reads fail, the rest work.
    let dwa = names.keys().find(|n| n.ends_with(".dwa")).unwrap().clone();
    let mut bytes = std::fs::read(dir.path().join(&dwa)).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join(&dwa), &bytes).unwrap();
    let store = open(dir.path()).unwrap();
    assert!(matches!(
        store.claims(&a).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.list_drops().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_torn_journal_after_a_snapshot_is_cut_and_damage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = drop_with_history(&store, "torn", &["ana"], false).await;
    store.snapshot_now().unwrap();
    store.claim(req(&id, "bo", "r1", T0 + 30)).await.unwrap();
    store.claim(req(&id, "cy", "r1", T0 + 40)).await.unwrap();
    let want = answers(&store, &id).await;
    drop(store);
    let path = dir.path().join("journal-1.dwj");
    let good = std::fs::read(&path).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&900u32.to_le_bytes()).unwrap();
    f.write_all(b"\x01\x02\x03\x04{\"t\":").unwrap();
    drop(f);
    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &id).await, want);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        good,
        "the torn tail was cut off"
    );
    drop(again);

    // Damage in the middle of the segment after the snapshot: refused.
    let mut bad = good.clone();
    bad[30] ^= 0x5a; // inside the first record's payload; a good one follows
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
    // The segment the snapshot continues with, missing: refused too.
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
}

#[tokio::test]
async fn settled_drops_leave_memory_and_answer_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = drop_with_history(&store, "archived", &["ana", "bo", "cy"], true).await;
    let b = drop_with_history(&store, "open", &["dee"], false).await;
    let (wa, wb) = (answers(&store, &a).await, answers(&store, &b).await);
    let list = store.list_drops().await.unwrap();
    let codes: Vec<ClaimCode> = wa.claims.iter().map(|c| c.code.clone()).collect();
    let redeemed = redeem_errors(&store, &codes).await;
    let refused = |viewer: &str, rid: &str| {
        let mut r = req(&a, viewer, rid, T0 + 90_000);
        r.refusal = Some(ClaimReason::Closed);
        r
    };
    let retried = store.claim(refused("bo", "r1")).await.unwrap();
    let coupon_again = store.take_coupon(coupon(&a, "ana", 1)).await.unwrap();
    let sold_out = store.take_coupon(coupon(&a, "bo", 1)).await.unwrap();
    assert_eq!(sold_out, CouponOutcome::SoldOut);

    let report = store.snapshot_now().unwrap();
    assert_eq!((report.archived_now, report.resident), (1, 1));
    let r = store.residency();
    assert_eq!((r.resident, r.archived, r.resident_claims), (1, 1, 1));

    let check = async |s: &MemoryStore| {
        assert_eq!(answers(s, &a).await, wa);
        assert_eq!(answers(s, &b).await, wb);
        assert_eq!(s.list_drops().await.unwrap(), list);
        assert_eq!(redeem_errors(s, &codes).await, redeemed);
        let unknown = ClaimCode::from_random([7; 10]);
        assert!(matches!(
            s.redeem(&unknown, T0).await,
            Err(StoreError::NoSuchClaim(_))
        ));
        assert_eq!(s.claim(refused("bo", "r1")).await.unwrap(), retried);
        assert_eq!(
            s.claim(refused("zed", "r9")).await.unwrap(),
            ClaimOutcome::Refused(ClaimReason::Closed)
        );
        assert_eq!(
            s.take_coupon(coupon(&a, "ana", 1)).await.unwrap(),
            coupon_again
        );
        assert_eq!(s.take_coupon(coupon(&a, "bo", 1)).await.unwrap(), sold_out);
        s.admit(&a, "ana").await.unwrap();
        assert_eq!(
            s.residency().archived,
            1,
            "answering from the archive loads nothing back"
        );
        assert!(matches!(
            s.create_drop(record(&a, 1, 1, 60)).await,
            Err(StoreError::AlreadyExists(_))
        ));
    };
    check(&store).await;
    drop(store);
    let store = open(dir.path()).unwrap();
    check(&store).await;
    // A change to the archived drop brings it back, and it is archived anew.
    let old_file: Vec<String> = files_in(dir.path())
        .into_keys()
        .filter(|n| n.ends_with(".dwa"))
        .collect();
    let seq = store.reserve_seq(&a, 5).await.unwrap();
    assert_eq!(seq, 101);
    assert_eq!(store.residency().archived, 0);
    let report = store.snapshot_now().unwrap();
    assert_eq!(report.archived_now, 1);
    let new_file: Vec<String> = files_in(dir.path())
        .into_keys()
        .filter(|n| n.ends_with(".dwa"))
        .collect();
    assert_eq!(new_file.len(), 1);
    assert_ne!(new_file, old_file, "archived anew, the old file deleted");
    assert_eq!(answers(&store, &a).await.claims, wa.claims);
    assert_eq!(store.reserve_seq(&a, 1).await.unwrap(), 106);
}

#[tokio::test]
async fn changes_to_an_archived_drop_replay_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = drop_with_history(&store, "replayed", &["ana", "bo"], true).await;
    store.snapshot_now().unwrap();
    assert_eq!(store.residency().archived, 1);
    // Changes after the snapshot, journaled only: no other snapshot before the "crash".
    store.reserve_seq(&a, 7).await.unwrap();
    let code = match store.take_coupon(coupon(&a, "cy", 5)).await.unwrap() {
        CouponOutcome::Granted { code } => code,
        other => panic!("{other:?}"),
    };
    store.admit(&a, "dee").await.unwrap();
    let want = answers(&store, &a).await;
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &a).await, want);
    assert_eq!(again.reserve_seq(&a, 1).await.unwrap(), 108);
    assert_eq!(
        again.take_coupon(coupon(&a, "cy", 5)).await.unwrap(),
        CouponOutcome::Granted { code }
    );
}

fn holds_bytes(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_in(dir)
        .into_keys()
        .map(|n| dir.join(n))
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

#[tokio::test]
async fn an_erasure_reaches_archived_drops_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let ana = format!("ana-{}", fresh_id("v").as_str());
    let a = drop_with_history(&store, "erase-archived", &[ana.as_str(), "bo"], true).await;
    let b = drop_with_history(&store, "erase-open", &["cy", ana.as_str()], false).await;
    store.snapshot_now().unwrap();
    assert_eq!(store.residency().archived, 1);
    assert!(!holds_bytes(dir.path(), ana.as_bytes()).is_empty());

    assert_eq!(store.erase_viewer(&ana, "erased-77").await.unwrap(), 2);
    for id in [&a, &b] {
        let claims = store.claims(id).await.unwrap();
        assert!(claims.iter().all(|c| c.viewer_id != ana), "{claims:?}");
        assert!(claims.iter().any(|c| c.viewer_id == "erased-77"));
    }
    let (wa, wb) = (answers(&store, &a).await, answers(&store, &b).await);
    // The snapshot the erasure asked for (or this one) rewrites the archive and truncates
    // the journal: no file names the viewer any more.
    store.snapshot_now().unwrap();
    assert_eq!(
        holds_bytes(dir.path(), ana.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(store.residency().archived, 1);
    drop(store);

    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &a).await, wa);
    assert_eq!(answers(&again, &b).await, wb);
    // The tombstone keeps the erased viewer's request ids; the old id is a stranger.
    let mut early = req(&a, "erased-77", "r1", T0 + 90_000);
    early.refusal = Some(ClaimReason::Closed);
    assert!(matches!(
        again.claim(early).await.unwrap(),
        ClaimOutcome::Granted(_)
    ));
    assert_eq!(again.erase_viewer(&ana, "erased-78").await.unwrap(), 0);
}

#[tokio::test]
async fn an_erasure_replayed_after_a_crash_reaches_archived_drops() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let a = drop_with_history(&store, "erase-replay", &["ana", "bo"], true).await;
    store.snapshot_now().unwrap();
    assert_eq!(store.erase_viewer("ana", "gone-1").await.unwrap(), 1);
    let want = answers(&store, &a).await;
    // A "crash" before any snapshot after the erasure: drop at once (the background
    // round may or may not have run; either way the state must be the same).
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &a).await, want);
    assert!(want.claims.iter().all(|c| c.viewer_id != "ana"));
    assert_eq!(
        want.claims
            .iter()
            .filter(|c| c.state == ClaimState::Redeemed)
            .count(),
        1
    );
}

#[tokio::test]
async fn a_journal_without_a_snapshot_opens_and_is_truncated_by_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = drop_with_history(&store, "legacy", &["ana", "bo"], true).await;
    let want = answers(&store, &id).await;
    drop(store);
    // A data dir as every earlier version wrote it: journal.dwj alone.
    assert_eq!(
        files_in(dir.path())
            .into_keys()
            .filter(|n| !n.starts_with("archive"))
            .collect::<Vec<_>>(),
        vec!["journal.dwj".to_owned()]
    );
    let store = open(dir.path()).unwrap();
    assert_eq!(answers(&store, &id).await, want);
    store.snapshot_now().unwrap();
    let names = files_in(dir.path());
    assert!(!names.contains_key("journal.dwj"), "{names:?}");
    drop(store);
    assert_eq!(answers(&open(dir.path()).unwrap(), &id).await, want);
}

#[tokio::test]
async fn the_writer_asks_for_a_snapshot_past_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.path().to_owned()),
        fsync: false,
        snapshots: SnapshotPolicy {
            every_records: 20,
            every_bytes: 0,
            ..SnapshotPolicy::default()
        },
    })
    .unwrap();
    let id = fresh_id("threshold");
    store.create_drop(record(&id, 100, 1, 60)).await.unwrap();
    for i in 0..60 {
        store
            .claim(req(&id, &format!("v{i}"), "r", T0))
            .await
            .unwrap();
    }
    // The background rounds run on their own thread: wait for one, at most a minute.
    let mut waited = 0;
    while files_in(dir.path()).contains_key("journal.dwj") && waited < 600 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(files_in(dir.path()).contains_key("snapshot.dws"));
    let want = answers(&store, &id).await;
    drop(store);
    assert_eq!(answers(&open(dir.path()).unwrap(), &id).await, want);
}
