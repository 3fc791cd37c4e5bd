//! The embedded store's archive: settled drops leave memory and still answer every method
//! as before, across restarts; changes to them replay after a crash; an erasure reaches
//! them and survives a restart.

use super::history::*;

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

/// Snapshots taken while a settled drop keeps changing (each change loads it back, and a
/// round may find it changed while it copied it off the gate): every round still ends in
/// a snapshot, and a restart gives back every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_while_a_settled_drop_keeps_changing() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()).unwrap());
    let a = drop_with_history(&store, "busy-settled", &["ana", "bo", "cy"], true).await;
    let changer = {
        let (store, a) = (std::sync::Arc::clone(&store), a.clone());
        tokio::spawn(async move {
            let mut starts = Vec::new();
            for _ in 0..1000 {
                starts.push(store.reserve_seq(&a, 1).await.unwrap());
            }
            starts
        })
    };
    let snapshots = {
        let store = std::sync::Arc::clone(&store);
        tokio::task::spawn_blocking(move || {
            (0..30)
                .map(|_| store.snapshot_now().unwrap().segment)
                .collect::<Vec<u64>>()
        })
    };
    let starts = changer.await.unwrap();
    let segments = snapshots.await.unwrap();
    assert!(
        starts.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers in order"
    );
    assert!(segments.windows(2).all(|w| w[1] > w[0]));
    let want = answers(&store, &a).await;
    let last = *starts.last().unwrap();
    drop(store);
    let again = open(dir.path()).unwrap();
    assert_eq!(answers(&again, &a).await, want);
    assert_eq!(again.reserve_seq(&a, 1).await.unwrap(), last + 1);
}
