//! The suite's cases about a viewer across the store: the early-access segment, a pass's
//! higher per-viewer limit, and erasure.

use std::collections::HashSet;
use std::sync::Arc;

use dropwire_core::{ClaimOutcome, ClaimReason};

use super::fixtures::{T0, fresh_id, new_drop, req};
use super::{granted, refused, storm};
use crate::{AwardOutcome, CouponOutcome, CouponRequest, ERASED_HANDLE, Store, StoreError};

pub async fn early_access_grants_the_segment_alone<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "early-access", 30, 1, 900).await;
    for i in 0..10 {
        store.admit(&id, &format!("m{i}")).await.expect("admit");
    }
    store
        .admit(&id, "m0")
        .await
        .expect("admitting twice is fine");
    let missing = store.admit(&fresh_id("missing"), "m0").await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchDrop(_))),
        "{missing:?}"
    );
    // Ten members and forty outsiders, all at once, inside the early-access window.
    let early = |viewer: String| {
        let mut r = req(&id, "mug", &viewer, "r1", T0);
        r.members_only = true;
        r
    };
    let reqs = (0..10)
        .map(|i| early(format!("m{i}")))
        .chain((0..40).map(|i| early(format!("o{i}"))))
        .collect();
    let outcomes = storm(&store, reqs).await;
    let won: HashSet<String> = granted(&outcomes)
        .iter()
        .map(|c| c.viewer_id.clone())
        .collect();
    assert_eq!(won, (0..10).map(|i| format!("m{i}")).collect());
    assert_eq!(refused(&outcomes, ClaimReason::NotOpen), 40);
    // The outsiders' refusals are not remembered: once public, the same rid may win.
    let later = store
        .claim(req(&id, "mug", "o0", "r1", T0 + 60_000))
        .await
        .expect("claim");
    assert!(matches!(later, ClaimOutcome::Granted(_)), "{later:?}");
    // And a member's grant is remembered inside and after the window.
    let again = store.claim(early("m3".into())).await.expect("claim");
    assert!(
        matches!(&again, ClaimOutcome::Granted(c) if c.viewer_id == "m3"),
        "{again:?}"
    );
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held), (19, 11));
}

pub async fn a_raised_limit_lets_its_viewer_alone_claim_more<S: Store>(store: Arc<S>) {
    // Limit 1 on the SKU; holders of a pass granting 3 claim at once, four times each.
    let id = new_drop(&*store, "raised-limit", 100, 1, 900).await;
    let with = |viewer: String, rid: String, raised: Option<u32>| {
        let mut r = req(&id, "mug", &viewer, &rid, T0);
        r.per_viewer_limit = raised;
        r
    };
    let reqs = (0..10)
        .flat_map(|i| (0..4).map(move |k| (i, k)))
        .map(|(i, k)| {
            // Holders p0..p4 hold 3; o0..o4 hold nothing; l0 holds a *lower* grant (0).
            let raised = (i < 5).then_some(3);
            let viewer = if i < 5 {
                format!("p{i}")
            } else {
                format!("o{i}")
            };
            with(viewer, format!("r{k}"), raised)
        })
        .chain((0..3).map(|k| with("l0".into(), format!("r{k}"), Some(0))))
        .collect();
    let outcomes = storm(&store, reqs).await;
    let won = granted(&outcomes);
    let count = |v: &str| won.iter().filter(|c| c.viewer_id == v).count();
    for i in 0..5 {
        assert_eq!(count(&format!("p{i}")), 3, "holder p{i}");
    }
    for i in 5..10 {
        assert_eq!(count(&format!("o{i}")), 1, "viewer o{i} without a pass");
    }
    assert_eq!(count("l0"), 1, "a lower grant never lowers the SKU's limit");
    assert_eq!(won.len(), 5 * 3 + 5 + 1);
    assert_eq!(refused(&outcomes, ClaimReason::LimitReached), 5 + 5 * 3 + 2);
    // A holder's decided rids keep their answers whatever limit comes with them later.
    for (k, before) in outcomes.iter().take(4).enumerate() {
        let again = store
            .claim(with("p0".into(), format!("r{k}"), None))
            .await
            .expect("claim");
        assert_eq!(&again, before, "p0's rid r{k}");
    }
    // The same viewer without its pass (revoked) is held to the SKU's limit.
    let revoked = store
        .claim(with("p1".into(), "r9".into(), None))
        .await
        .expect("claim");
    assert_eq!(revoked, ClaimOutcome::Refused(ClaimReason::LimitReached));
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held), (100 - 21, 21));
}

pub async fn erasing_a_viewer_keeps_the_counts_and_drops_the_link<S: Store>(store: Arc<S>) {
    let a = new_drop(&*store, "erase-a", 5, 1, 900).await;
    let b = new_drop(&*store, "erase-b", 5, 1, 900).await;
    let ana = format!("ana-{}", a.as_str());
    store.admit(&a, &ana).await.expect("admit");
    for (drop, sku, rid) in [(&a, "mug", "r1"), (&a, "jug", "r2"), (&b, "mug", "r1")] {
        let out = store
            .claim(req(drop, sku, &ana, rid, T0))
            .await
            .expect("claim");
        assert!(matches!(out, ClaimOutcome::Granted(_)), "{out:?}");
    }
    store
        .claim(req(&a, "mug", "bo", "r1", T0 + 5))
        .await
        .expect("claim");
    let coupon = |viewer: &str| CouponRequest {
        drop_id: a.clone(),
        coupon: "s1".into(),
        limit: 2,
        viewer_id: viewer.into(),
        now_ms: T0,
    };
    let CouponOutcome::Granted { code } = store.take_coupon(coupon(&ana)).await.expect("coupon")
    else {
        panic!("a coupon code")
    };
    let quest = |viewer: &str, rid: &str| super::quests::award(&a, "s2", viewer, rid, T0 + 150);
    let won = store.award(quest(&ana, "q1")).await.expect("award");
    assert_eq!(won, AwardOutcome::Awarded { points: 50 });
    let before = store.figures(&a).await.expect("figures");

    let tomb = format!("erased-{}", a.as_str());
    let changed = store.erase_viewer(&ana, &tomb).await.expect("erase");
    assert!(changed >= 3, "ana's three claims changed, got {changed}");

    for drop in [&a, &b] {
        for c in store.claims(drop).await.expect("claims") {
            assert_ne!(c.viewer_id, ana, "no claim links back");
            if c.viewer_id == tomb {
                assert_eq!(c.handle, ERASED_HANDLE);
            }
        }
    }
    let mine =
        |claims: Vec<dropwire_core::Claim>| claims.iter().filter(|c| c.viewer_id == tomb).count();
    assert_eq!(mine(store.claims(&a).await.expect("claims")), 2);
    assert_eq!(mine(store.claims(&b).await.expect("claims")), 1);
    let after = store.figures(&a).await.expect("figures");
    assert_eq!(
        (after.held, after.claimers, &after.stock),
        (before.held, before.claimers, &before.stock),
        "counts stay right"
    );
    let handles: Vec<&str> = after
        .leaderboard
        .iter()
        .map(|e| e.handle.as_str())
        .collect();
    assert!(
        handles.contains(&ERASED_HANDLE) && handles.contains(&"@bo"),
        "{handles:?}"
    );
    assert!(!handles.iter().any(|h| h.contains("ana")), "{handles:?}");
    // The tombstone keeps the erased viewer's answers and limits; the coupon count holds.
    let retry = store
        .claim(req(&a, "mug", &tomb, "r1", T0 + 9))
        .await
        .expect("claim");
    assert!(
        matches!(retry, ClaimOutcome::Granted(ref c) if c.viewer_id == tomb),
        "{retry:?}"
    );
    let limit = store
        .claim(req(&a, "mug", &tomb, "r9", T0 + 9))
        .await
        .expect("claim");
    assert_eq!(limit, ClaimOutcome::Refused(ClaimReason::LimitReached));
    assert_eq!(
        store.take_coupon(coupon(&tomb)).await.expect("coupon"),
        CouponOutcome::Granted { code }
    );
    // The quest award moved with the viewer: the tombstone's rid is answered alike, and
    // the quest is not earned twice.
    assert_eq!(store.award(quest(&tomb, "q1")).await.expect("award"), won);
    assert_eq!(
        store.award(quest(&tomb, "q2")).await.expect("award"),
        AwardOutcome::AlreadyAwarded
    );
    assert_eq!(store.figures(&a).await.expect("figures").awards, 1);
    // Membership moved with the viewer.
    let mut early = req(&a, "jug", &tomb, "r5", T0 + 9);
    early.members_only = true;
    let early = store.claim(early).await.expect("claim");
    assert_ne!(
        early,
        ClaimOutcome::Refused(ClaimReason::NotOpen),
        "still a member"
    );
    assert_eq!(
        store
            .erase_viewer("nobody-at-all", "erased-none")
            .await
            .expect("erase"),
        0
    );
}
