//! The suite's cases about the claim rules written once in [`dropwire_core::claim`]:
//! points per rank, the leaderboard's size, the refused-rid cap. The Redis store's scripts
//! get them rendered in; these cases catch a backend that applies other numbers.

use std::sync::Arc;

use dropwire_core::claim::{
    FEWEST_CLAIM_POINTS, FIRST_CLAIM_POINTS, LEADERBOARD_SIZE, POINTS_PER_RANK, REFUSED_RIDS_KEPT,
    Score, claim_points, leaderboard,
};
use dropwire_core::{ClaimOutcome, ClaimReason};

use super::fixtures::{T0, new_drop, req};
use crate::Store;

pub async fn points_and_the_board_follow_the_core_rules<S: Store>(store: Arc<S>) {
    // Past the rank where points stop falling, and past the board's size.
    let floor_rank = ((FIRST_CLAIM_POINTS - FEWEST_CLAIM_POINTS) / POINTS_PER_RANK + 1) as usize;
    let n = floor_rank.max(LEADERBOARD_SIZE) + 3;
    let id = new_drop(&*store, "core-rules", n as u32, 1, 900).await;
    let mut scores = Vec::new();
    for i in 0..n {
        let viewer = format!("v{i:03}");
        let at = T0 + i as u64;
        let outcome = store
            .claim(req(&id, "mug", &viewer, "r", at))
            .await
            .expect("claim");
        let ClaimOutcome::Granted(c) = outcome else {
            panic!("claim {i}: {outcome:?}")
        };
        assert_eq!(
            (c.rank, c.points),
            (i as u32, claim_points(i as u32)),
            "claim {i}"
        );
        scores.push(Score {
            viewer_id: viewer.clone(),
            handle: format!("@{viewer}"),
            points: c.points,
            first_ms: at,
        });
    }
    assert_eq!(scores[0].points, FIRST_CLAIM_POINTS);
    assert_eq!(scores[1].points, FIRST_CLAIM_POINTS - POINTS_PER_RANK);
    assert!(
        scores[floor_rank..]
            .iter()
            .all(|s| s.points == FEWEST_CLAIM_POINTS)
    );
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.held, f.claimers), (n as u64, n as u64));
    assert_eq!(f.leaderboard.len(), LEADERBOARD_SIZE);
    assert_eq!(f.leaderboard, leaderboard(&scores, LEADERBOARD_SIZE));
}

pub async fn refused_rids_are_remembered_up_to_the_cap<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "refused-cap", 5, 1, 900).await;
    let first = store
        .claim(req(&id, "mug", "ana", "won", T0))
        .await
        .expect("claim");
    assert!(matches!(first, ClaimOutcome::Granted(_)), "{first:?}");
    // One refusal more than the store keeps: the oldest, `r0`, is forgotten.
    for k in 0..=REFUSED_RIDS_KEPT {
        let outcome = store
            .claim(req(&id, "mug", "ana", &format!("r{k}"), T0 + 1))
            .await
            .expect("claim");
        assert_eq!(outcome, ClaimOutcome::Refused(ClaimReason::LimitReached));
    }
    // Asked again with the hub's refusal: a remembered rid keeps its answer, a forgotten
    // one gets the refusal (and nothing is recorded).
    let again = |rid: String| {
        let mut r = req(&id, "mug", "ana", &rid, T0 + 2);
        r.refusal = Some(ClaimReason::Closed);
        r
    };
    let forgotten = store.claim(again("r0".into())).await.expect("claim");
    assert_eq!(forgotten, ClaimOutcome::Refused(ClaimReason::Closed));
    for k in 1..=REFUSED_RIDS_KEPT {
        let kept = store.claim(again(format!("r{k}"))).await.expect("claim");
        assert_eq!(
            kept,
            ClaimOutcome::Refused(ClaimReason::LimitReached),
            "r{k}"
        );
    }
    let won = store.claim(again("won".into())).await.expect("claim");
    assert_eq!(won, first, "a granted rid is kept with its claim");
}

/// The board counts points for items held or bought: an expired hold's early-bird points
/// leave the viewer's score (claim → expire → claim adds only the second claim's points).
pub async fn an_expired_hold_keeps_no_points<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "expired-points", 3, 1, 900).await;
    let claim = |viewer: &'static str, rid: &'static str, at: u64| {
        let store = Arc::clone(&store);
        let id = id.clone();
        async move {
            match store.claim(req(&id, "mug", viewer, rid, at)).await {
                Ok(ClaimOutcome::Granted(c)) => c,
                other => panic!("{viewer} {rid}: {other:?}"),
            }
        }
    };
    let ana = claim("ana", "r1", T0).await;
    let bo = claim("bo", "r1", T0 + 1).await;
    assert_eq!((ana.points, bo.points), (claim_points(0), claim_points(1)));
    store.redeem(&bo.code, T0 + 10).await.expect("redeem");
    // Ana's hold runs out (judged on the spot at its deadline; no sweep reaches it).
    let late = store.redeem(&ana.code, ana.hold_until_ms).await;
    assert!(
        matches!(late, Err(crate::StoreError::NotHeld { .. })),
        "{late:?}"
    );
    let board = |f: crate::DropFigures| {
        f.leaderboard
            .into_iter()
            .map(|e| (e.handle, e.points))
            .collect::<Vec<_>>()
    };
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.expired, f.redeemed, f.claimers), (1, 1, 2));
    assert_eq!(board(f), [("@bo".to_owned(), claim_points(1))]);
    // She claims again: the new claim's points, not added to the expired one's.
    let again = claim("ana", "r2", ana.hold_until_ms + 1).await;
    assert_eq!(again.points, claim_points(2));
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(f.claimers, 2);
    assert_eq!(
        board(f),
        [
            ("@bo".to_owned(), claim_points(1)),
            ("@ana".to_owned(), claim_points(2))
        ]
    );
}
