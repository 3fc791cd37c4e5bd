//! Snapshots and journal truncation of the embedded store: a restart after a snapshot
//! gives back the same state; a crash at any step of a snapshot reopens to the
//! acknowledged state; damage is refused, never skipped; the journal's writer asks for
//! snapshots past its threshold.

use super::history::*;

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
    drop(store);

    // An archived drop's file, missing: refused on opening.
    std::fs::remove_file(dir.path().join(&dwa)).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
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
