//! The conformance suite: one function per guarantee, generic over any [`Store`]. Each
//! backend's tests expand [`conformance_tests!`](crate::conformance_tests) with a way to
//! make a store, so every backend proves the same behaviour, concurrency included. Each
//! function uses its own freshly named drop, so the suite may share one backend.

use std::collections::HashSet;
use std::sync::Arc;

use dropwire_core::timeline::{ControlAction, ControlEntry};
use dropwire_core::{ClaimOutcome, ClaimReason, ClaimState, DropId};

use crate::{ClaimRequest, CouponOutcome, CouponRequest, Store, StoreError};

pub mod bus;
mod draw;
mod fixtures;
mod holds;
mod quests;
mod rules;
mod viewers;
pub use self::draw::{
    DRAW_AT, a_draw_grants_in_ticket_order_and_never_oversells, a_draw_keeps_the_per_viewer_limit,
    after_the_draw_claims_are_first_come_first_served,
    an_erased_entrant_is_drawn_under_its_tombstone, entry, many_triggers_hold_one_draw,
};
use self::fixtures::{T0, new_drop};
pub use self::fixtures::{fresh_id, record, req};
pub use self::holds::{
    an_expired_viewer_may_claim_again, expiry_returns_stock_exactly_once,
    redemption_moves_held_to_redeemed_once,
};
pub use self::quests::{
    a_quest_awards_each_viewer_once_in_its_window, a_quest_for_the_first_n_awards_exactly_n,
    a_quest_storm_awards_each_viewer_once, award,
};
pub use self::rules::{
    an_expired_hold_keeps_no_points, points_and_the_board_follow_the_core_rules,
    refused_rids_are_remembered_up_to_the_cap,
};
pub use self::viewers::{
    a_raised_limit_lets_its_viewer_alone_claim_more, early_access_grants_the_segment_alone,
    erasing_a_viewer_keeps_the_counts_and_drops_the_link,
};

/// Expands to one `#[tokio::test]` per guarantee, each getting a store from `$make`
/// (an async expression evaluated once per test).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            drops_are_created_once,
            the_control_log_is_compare_and_append,
            a_storm_never_oversells,
            nobody_gets_past_the_per_viewer_limit,
            a_rid_sent_many_times_at_once_gets_one_answer,
            a_retried_rid_gets_the_same_answer,
            redemption_moves_held_to_redeemed_once,
            expiry_returns_stock_exactly_once,
            an_expired_viewer_may_claim_again,
            a_unique_coupon_hands_out_exactly_its_limit,
            sequence_ranges_never_overlap,
            figures_count_claims_and_rank_the_early_birds,
            points_and_the_board_follow_the_core_rules,
            refused_rids_are_remembered_up_to_the_cap,
            an_expired_hold_keeps_no_points,
            a_quest_awards_each_viewer_once_in_its_window,
            a_quest_storm_awards_each_viewer_once,
            a_quest_for_the_first_n_awards_exactly_n,
            early_access_grants_the_segment_alone,
            a_raised_limit_lets_its_viewer_alone_claim_more,
            erasing_a_viewer_keeps_the_counts_and_drops_the_link,
            a_draw_grants_in_ticket_order_and_never_oversells,
            a_draw_keeps_the_per_viewer_limit,
            after_the_draw_claims_are_first_come_first_served,
            many_triggers_hold_one_draw,
            an_erased_entrant_is_drawn_under_its_tombstone
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = ::std::sync::Arc::new($make.await);
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

/// Claims concurrently, one task per request; returns the outcomes in request order.
async fn storm<S: Store>(store: &Arc<S>, reqs: Vec<ClaimRequest>) -> Vec<ClaimOutcome> {
    let tasks: Vec<_> = reqs
        .into_iter()
        .map(|r| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.claim(r).await.expect("claim") })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn granted(outcomes: &[ClaimOutcome]) -> Vec<&dropwire_core::Claim> {
    outcomes
        .iter()
        .filter_map(|o| {
            if let ClaimOutcome::Granted(c) = o {
                Some(c)
            } else {
                None
            }
        })
        .collect()
}

fn refused(outcomes: &[ClaimOutcome], reason: ClaimReason) -> usize {
    outcomes
        .iter()
        .filter(|o| **o == ClaimOutcome::Refused(reason))
        .count()
}

pub async fn drops_are_created_once<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "created-once", 3, 1, 60).await;
    let again = store.create_drop(record(&id, 3, 1, 60)).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    let got = store.drop_record(&id).await.expect("read").expect("exists");
    assert_eq!(got, record(&id, 3, 1, 60));
    assert!(
        store
            .list_drops()
            .await
            .expect("list")
            .iter()
            .any(|r| r.id == id)
    );
    assert_eq!(
        store.drop_record(&fresh_id("missing")).await.expect("read"),
        None
    );
    let missing = store
        .claim(req(&fresh_id("missing"), "mug", "v", "r", T0))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchDrop(_))),
        "{missing:?}"
    );
}

pub async fn the_control_log_is_compare_and_append<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "control-log", 3, 1, 60).await;
    let start = ControlEntry {
        at_ms: T0,
        action: ControlAction::Start,
    };
    let log = store
        .append_control(&id, 0, start.clone())
        .await
        .expect("append");
    assert_eq!(log, vec![start.clone()]);
    // Two nodes racing to pause: exactly one wins.
    let pause = ControlEntry {
        at_ms: T0 + 5,
        action: ControlAction::Pause,
    };
    let race = |store: Arc<S>, id: DropId, entry: ControlEntry| {
        tokio::spawn(async move { store.append_control(&id, 1, entry).await })
    };
    let a = race(Arc::clone(&store), id.clone(), pause.clone());
    let b = race(Arc::clone(&store), id.clone(), pause.clone());
    let (a, b) = (a.await.expect("task"), b.await.expect("task"));
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    assert!(
        [a, b]
            .into_iter()
            .any(|r| matches!(r, Err(StoreError::Conflict)))
    );
    assert_eq!(
        store
            .drop_record(&id)
            .await
            .expect("read")
            .expect("exists")
            .log,
        vec![start.clone(), pause.clone()]
    );
    // A chat moderation entry is kept like any other (the timeline ignores it).
    let mute = ControlEntry {
        at_ms: T0 + 6,
        action: ControlAction::Chat {
            op: dropwire_core::chat::ChatOp::Mute {
                viewer_id: "v1".into(),
                until_ms: Some(T0 + 60_000),
                ban: false,
            },
        },
    };
    let log = store
        .append_control(&id, 2, mute.clone())
        .await
        .expect("append a chat entry");
    assert_eq!(log, vec![start, pause, mute]);
    let stored = store.drop_record(&id).await.expect("read").expect("exists");
    assert_eq!(stored.log, log);
}

pub async fn a_storm_never_oversells<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "storm", 40, 1, 900).await;
    let reqs = (0..500)
        .map(|i| req(&id, "mug", &format!("v{i}"), "r1", T0 + i))
        .collect();
    let outcomes = storm(&store, reqs).await;
    let won = granted(&outcomes);
    assert_eq!(won.len(), 40);
    assert_eq!(refused(&outcomes, ClaimReason::SoldOut), 460);
    let codes: HashSet<_> = won.iter().map(|c| c.code.clone()).collect();
    assert_eq!(codes.len(), 40, "codes are unique");
    let ranks: HashSet<u32> = won.iter().map(|c| c.rank).collect();
    assert_eq!(ranks, (0..40).collect(), "ranks are 0..40, each once");
    for c in &won {
        assert_eq!(c.state, ClaimState::Held);
        assert_eq!(c.hold_until_ms, c.created_ms + 900_000);
        assert_eq!(c.points, dropwire_core::claim::claim_points(c.rank));
    }
    let listed = store.claims(&id).await.expect("claims");
    assert_eq!(
        listed
            .iter()
            .map(|c| c.code.clone())
            .collect::<HashSet<_>>(),
        codes
    );
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held, f.claimers), (0, 40, 40));
}

pub async fn nobody_gets_past_the_per_viewer_limit<S: Store>(store: Arc<S>) {
    // Plenty of stock: 100 viewers each try 3 times at once with a limit of 2.
    let id = new_drop(&*store, "limit-two", 250, 2, 900).await;
    let reqs = (0..100)
        .flat_map(|i| (0..3).map(move |k| (i, k)))
        .map(|(i, k)| req(&id, "mug", &format!("v{i}"), &format!("r{k}"), T0))
        .collect();
    let outcomes = storm(&store, reqs).await;
    let won = granted(&outcomes);
    assert_eq!(won.len(), 200);
    assert_eq!(refused(&outcomes, ClaimReason::LimitReached), 100);
    for i in 0..100 {
        let mine = won
            .iter()
            .filter(|c| c.viewer_id == format!("v{i}"))
            .count();
        assert_eq!(mine, 2, "viewer v{i} got {mine}");
    }
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held, f.claimers), (50, 200, 100));

    // Scarce stock: 30 viewers each claim twice at once, 40 units.
    let id = new_drop(&*store, "limit-two-scarce", 40, 2, 900).await;
    let reqs = (0..30)
        .flat_map(|i| (0..2).map(move |k| (i, k)))
        .map(|(i, k)| req(&id, "mug", &format!("v{i}"), &format!("r{k}"), T0))
        .collect();
    let outcomes = storm(&store, reqs).await;
    let won = granted(&outcomes);
    assert_eq!(won.len(), 40);
    assert_eq!(refused(&outcomes, ClaimReason::SoldOut), 20);
    for i in 0..30 {
        let mine = won
            .iter()
            .filter(|c| c.viewer_id == format!("v{i}"))
            .count();
        assert!(mine <= 2, "viewer v{i} got {mine}");
    }
    assert_eq!(store.claims(&id).await.expect("claims").len(), 40);
}

pub async fn a_rid_sent_many_times_at_once_gets_one_answer<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "rid-race", 3, 2, 900).await;
    let outcomes = storm(
        &store,
        (0..50).map(|_| req(&id, "mug", "ana", "r1", T0)).collect(),
    )
    .await;
    assert!(
        matches!(outcomes[0], ClaimOutcome::Granted(_)),
        "{:?}",
        outcomes[0]
    );
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "{outcomes:?}");
    // jug allows one per viewer: the second rid is refused, every copy alike.
    assert!(matches!(
        store
            .claim(req(&id, "jug", "ana", "j1", T0))
            .await
            .expect("claim"),
        ClaimOutcome::Granted(_)
    ));
    let outcomes = storm(
        &store,
        (0..50).map(|_| req(&id, "jug", "ana", "j2", T0)).collect(),
    )
    .await;
    assert!(
        outcomes
            .iter()
            .all(|o| *o == ClaimOutcome::Refused(ClaimReason::LimitReached)),
        "{outcomes:?}"
    );
    let claims = store.claims(&id).await.expect("claims");
    assert_eq!(claims.len(), 2, "one claim per rid");
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.stock[1].left), (2, 4));
}

pub async fn a_retried_rid_gets_the_same_answer<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "rid", 1, 1, 900).await;
    let first = store
        .claim(req(&id, "mug", "ana", "r1", T0))
        .await
        .expect("claim");
    let again = store
        .claim(req(&id, "mug", "ana", "r1", T0 + 10))
        .await
        .expect("claim");
    assert!(matches!(first, ClaimOutcome::Granted(_)));
    assert_eq!(first, again);
    let bo = store
        .claim(req(&id, "mug", "bo", "x", T0))
        .await
        .expect("claim");
    assert_eq!(bo, ClaimOutcome::Refused(ClaimReason::SoldOut));
    assert_eq!(
        store
            .claim(req(&id, "mug", "bo", "x", T0))
            .await
            .expect("claim"),
        bo
    );
    let unknown = store
        .claim(req(&id, "vase", "cy", "y", T0))
        .await
        .expect("claim");
    assert_eq!(unknown, ClaimOutcome::Refused(ClaimReason::NotOpen));
    // The timeline refuses (a pause, the close): a decided rid keeps its answer, grant or
    // refusal; an undecided one hears the timeline's reason, and nothing is recorded.
    let shut = |viewer: &str, rid: &str, why| ClaimRequest {
        refusal: Some(why),
        ..req(&id, "mug", viewer, rid, T0 + 20)
    };
    let ana = store.claim(shut("ana", "r1", ClaimReason::Closed)).await;
    assert_eq!(ana.expect("claim"), first);
    let bo_again = store.claim(shut("bo", "x", ClaimReason::NotOpen)).await;
    assert_eq!(bo_again.expect("claim"), bo);
    let cy = store.claim(shut("cy", "z", ClaimReason::Closed)).await;
    assert_eq!(
        cy.expect("claim"),
        ClaimOutcome::Refused(ClaimReason::Closed)
    );
    let cy = store.claim(req(&id, "mug", "cy", "z", T0 + 30)).await;
    assert_eq!(
        cy.expect("claim"),
        ClaimOutcome::Refused(ClaimReason::SoldOut)
    );
    assert_eq!(store.claims(&id).await.expect("claims").len(), 1);
}

pub async fn a_unique_coupon_hands_out_exactly_its_limit<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "coupon", 1, 1, 60).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .take_coupon(CouponRequest {
                        drop_id: id,
                        coupon: "s3".into(),
                        limit: 5,
                        viewer_id: format!("v{i}"),
                        now_ms: T0,
                    })
                    .await
                    .expect("coupon")
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    let mut codes = Vec::new();
    let mut sold_out = 0;
    for t in tasks {
        let outcome = t.await.expect("task");
        match &outcome {
            CouponOutcome::Granted { code } => codes.push(code.clone()),
            CouponOutcome::SoldOut => sold_out += 1,
        }
        outcomes.push(outcome);
    }
    let unique: HashSet<_> = codes.iter().collect();
    assert_eq!((codes.len(), unique.len(), sold_out), (5, 5, 15));
    // Asking again: the same code for a winner, still sold out for the others.
    for (i, first) in outcomes.iter().enumerate() {
        let again = store
            .take_coupon(CouponRequest {
                drop_id: id.clone(),
                coupon: "s3".into(),
                limit: 5,
                viewer_id: format!("v{i}"),
                now_ms: T0,
            })
            .await
            .expect("coupon");
        assert_eq!(&again, first, "viewer v{i} asked again");
    }
    let other = store
        .take_coupon(CouponRequest {
            drop_id: id,
            coupon: "s4".into(),
            limit: 1,
            viewer_id: "v0".into(),
            now_ms: T0,
        })
        .await;
    assert!(
        matches!(other, Ok(CouponOutcome::Granted { .. })),
        "coupons are counted apart"
    );
}

pub async fn sequence_ranges_never_overlap<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "seq", 1, 1, 60).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move { store.reserve_seq(&id, 100).await.expect("reserve") })
        })
        .collect();
    let mut starts = Vec::new();
    for t in tasks {
        starts.push(t.await.expect("task"));
    }
    starts.sort_unstable();
    assert!(starts[0] >= 1);
    for w in starts.windows(2) {
        assert!(w[1] >= w[0] + 100, "ranges overlap: {starts:?}");
    }
}

pub async fn figures_count_claims_and_rank_the_early_birds<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "figures", 10, 1, 900).await;
    for (i, viewer) in ["ana", "bo", "cy"].iter().enumerate() {
        store
            .claim(req(&id, "mug", viewer, "r", T0 + i as u64))
            .await
            .expect("claim");
    }
    store
        .claim(req(&id, "jug", "cy", "r2", T0 + 10))
        .await
        .expect("claim");
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(
        f.stock
            .iter()
            .map(|s| (s.sku.as_str(), s.left))
            .collect::<Vec<_>>(),
        [("mug", 7), ("jug", 4)]
    );
    assert_eq!((f.held, f.claimers), (4, 3));
    let board: Vec<_> = f
        .leaderboard
        .iter()
        .map(|e| (e.rank, e.handle.as_str(), e.points))
        .collect();
    assert_eq!(board, [(1, "@cy", 190), (2, "@ana", 100), (3, "@bo", 95)]);
}
