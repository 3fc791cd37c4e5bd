//! The suite's cases about fair start ([`ClaimRequest::draw_at_ms`]): entries before the
//! draw's time, one draw in ticket order at it (whoever triggers it, however many at
//! once), stock and per-viewer limits kept, a rid's answer the same before and after, and
//! first come, first served after the draw.

use std::collections::HashSet;
use std::sync::Arc;

use dropwire_core::claim::claim_points;
use dropwire_core::{Claim, ClaimOutcome, ClaimReason, DropId};

use super::fixtures::{T0, new_drop, req};
use super::{granted, refused, storm};
use crate::{ClaimRequest, Store};

/// The draw's time in these cases.
pub const DRAW_AT: u64 = T0 + 2_000;

/// `viewer` asks for `mug` with rid `rid` at `now_ms`, in the draw at [`DRAW_AT`], with
/// `ticket`.
pub fn entry(drop: &DropId, viewer: &str, rid: &str, now_ms: u64, ticket: u64) -> ClaimRequest {
    ClaimRequest {
        draw_at_ms: Some(DRAW_AT),
        ticket: Some(ticket),
        ..req(drop, "mug", viewer, rid, now_ms)
    }
}

const ENTERED: ClaimOutcome = ClaimOutcome::Entered {
    draw_at_ms: DRAW_AT,
};

/// Tickets that do not follow the arrival order: viewer `i` of `n` gets `(i * 7) % n`
/// (a permutation for `n` prime to 7), times 1000 so that they are not small either.
fn shuffled(i: u64, n: u64) -> u64 {
    ((i * 7) % n) * 1000 + 17
}

fn claim_of(o: &ClaimOutcome) -> &Claim {
    match o {
        ClaimOutcome::Granted(c) => c,
        other => panic!("not granted: {other:?}"),
    }
}

pub async fn a_draw_grants_in_ticket_order_and_never_oversells<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "draw-order", 3, 1, 900).await;
    // Ten entrants in the window, in arrival order v0..v9, tickets shuffled.
    for i in 0..10u64 {
        let got = store
            .claim(entry(
                &id,
                &format!("v{i}"),
                "r1",
                T0 + 100 + i,
                shuffled(i, 10),
            ))
            .await
            .expect("enter");
        assert_eq!(got, ENTERED, "v{i}");
    }
    // The same rid again before the draw: the same answer; nothing allocated yet.
    let again = store
        .claim(entry(&id, "v3", "r1", T0 + 500, 999))
        .await
        .expect("again");
    assert_eq!(again, ENTERED);
    assert!(store.claims(&id).await.expect("claims").is_empty());
    // At the draw's time every entrant asks again, all at once: one draw.
    let asks = (0..10u64)
        .map(|i| entry(&id, &format!("v{i}"), "r1", DRAW_AT + i, 1))
        .collect();
    let outcomes = storm(&store, asks).await;
    let won = granted(&outcomes);
    assert_eq!(won.len(), 3, "{outcomes:?}");
    assert_eq!(refused(&outcomes, ClaimReason::SoldOut), 7);
    // The three lowest tickets win, ranked by ticket: tickets 17, 1017, 2017 are viewers
    // 0, 3 and 6 ((i * 7) % 10 = 0, 1, 2).
    let mut by_rank: Vec<&Claim> = won.clone();
    by_rank.sort_by_key(|c| c.rank);
    let winners: Vec<(&str, u32, u32)> = by_rank
        .iter()
        .map(|c| (c.viewer_id.as_str(), c.rank, c.points))
        .collect();
    assert_eq!(
        winners,
        [
            ("v0", 0, claim_points(0)),
            ("v3", 1, claim_points(1)),
            ("v6", 2, claim_points(2))
        ]
    );
    for c in &won {
        assert_eq!(c.created_ms, DRAW_AT, "dated at the draw");
        assert_eq!(c.hold_until_ms, DRAW_AT + 900_000);
        assert_eq!(c.sku, "mug");
    }
    // The same rids after the draw: the same answers, the same codes.
    for (i, first) in outcomes.iter().enumerate() {
        let later = store
            .claim(entry(&id, &format!("v{i}"), "r1", DRAW_AT + 5_000, 1))
            .await
            .expect("later");
        assert_eq!(&later, first, "v{i}");
    }
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(f.held, 3);
    assert_eq!(
        f.stock.iter().find(|s| s.sku == "mug").map(|s| s.left),
        Some(0)
    );
    // Points follow the draw order on the board.
    let board: Vec<(String, u32)> = f
        .leaderboard
        .iter()
        .map(|e| (e.handle.clone(), e.points))
        .collect();
    assert_eq!(
        board,
        [
            ("@v0".to_owned(), claim_points(0)),
            ("@v3".to_owned(), claim_points(1)),
            ("@v6".to_owned(), claim_points(2))
        ]
    );
}

pub async fn a_draw_keeps_the_per_viewer_limit<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "draw-limit", 10, 2, 900).await;
    let ask = |r: ClaimRequest| {
        let store = Arc::clone(&store);
        async move { store.claim(r).await.expect("claim") }
    };
    assert_eq!(ask(entry(&id, "ana", "a1", T0 + 1, 5)).await, ENTERED);
    assert_eq!(ask(entry(&id, "ana", "a2", T0 + 2, 6)).await, ENTERED);
    // A third entry of the same viewer is over its limit of 2: refused at once.
    assert_eq!(
        ask(entry(&id, "ana", "a3", T0 + 3, 1)).await,
        ClaimOutcome::Refused(ClaimReason::LimitReached)
    );
    assert_eq!(ask(entry(&id, "bob", "b1", T0 + 4, 7)).await, ENTERED);
    // The draw: ana's two, then bob's.
    let a1 = ask(entry(&id, "ana", "a1", DRAW_AT, 0)).await;
    let a2 = ask(entry(&id, "ana", "a2", DRAW_AT, 0)).await;
    let b1 = ask(entry(&id, "bob", "b1", DRAW_AT, 0)).await;
    assert_eq!(
        [&a1, &a2, &b1].map(|o| claim_of(o).rank),
        [0, 1, 2],
        "in ticket order"
    );
    // After the draw ana is at her limit, first come, first served.
    assert_eq!(
        ask(entry(&id, "ana", "a4", DRAW_AT + 1, 0)).await,
        ClaimOutcome::Refused(ClaimReason::LimitReached)
    );
    let b2 = ask(entry(&id, "bob", "b2", DRAW_AT + 2, 0)).await;
    assert_eq!(claim_of(&b2).rank, 3);
    assert_eq!(claim_of(&b2).created_ms, DRAW_AT + 2, "served at once");
    // A pass holder's raised limit (3) holds in the draw too: three entries, the fourth
    // refused at once, and all three granted by the draw.
    let id = new_drop(&*store, "draw-raised", 10, 1, 900).await;
    let raised = |rid: &str, now: u64, ticket: u64| {
        let mut r = entry(&id, "pat", rid, now, ticket);
        r.per_viewer_limit = Some(3);
        r
    };
    for (k, rid) in ["p1", "p2", "p3"].into_iter().enumerate() {
        assert_eq!(
            ask(raised(rid, T0 + 1 + k as u64, 10 + k as u64)).await,
            ENTERED
        );
    }
    assert_eq!(
        ask(raised("p4", T0 + 5, 1)).await,
        ClaimOutcome::Refused(ClaimReason::LimitReached)
    );
    // Without the pass, a second entry is over the SKU's limit of 1.
    assert_eq!(ask(entry(&id, "quinn", "q1", T0 + 6, 2)).await, ENTERED);
    assert_eq!(
        ask(entry(&id, "quinn", "q2", T0 + 7, 3)).await,
        ClaimOutcome::Refused(ClaimReason::LimitReached)
    );
    for rid in ["p1", "p2", "p3"] {
        let drawn = ask(raised(rid, DRAW_AT, 0)).await;
        assert_eq!(claim_of(&drawn).viewer_id, "pat", "{rid}");
    }
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held), (6, 4));
}

pub async fn after_the_draw_claims_are_first_come_first_served<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "draw-then-fcfs", 3, 1, 900).await;
    let ask = |r: ClaimRequest| {
        let store = Arc::clone(&store);
        async move { store.claim(r).await.expect("claim") }
    };
    assert_eq!(ask(entry(&id, "ana", "r", T0 + 1, 9)).await, ENTERED);
    assert_eq!(ask(entry(&id, "bob", "r", T0 + 2, 3)).await, ENTERED);
    // A new rid after the draw's time, before any entrant asks again: the draw first.
    let cat = ask(entry(&id, "cat", "r", DRAW_AT + 10, 0)).await;
    assert_eq!(claim_of(&cat).rank, 2, "after the two drawn");
    assert_eq!(claim_of(&cat).created_ms, DRAW_AT + 10);
    // The entrants' answers were decided by the draw: bob's ticket is lower.
    assert_eq!(
        claim_of(&ask(entry(&id, "bob", "r", DRAW_AT + 20, 0)).await).rank,
        0
    );
    assert_eq!(
        claim_of(&ask(entry(&id, "ana", "r", DRAW_AT + 20, 0)).await).rank,
        1
    );
    // A claim without a draw (fair start off at the hub) is served as ever: sold out now.
    assert_eq!(
        ask(req(&id, "mug", "dan", "r", DRAW_AT + 30)).await,
        ClaimOutcome::Refused(ClaimReason::SoldOut)
    );
    // Entering after the draw's time is no longer possible: first come, first served.
    assert_eq!(
        ask(entry(&id, "eve", "r", DRAW_AT + 40, 0)).await,
        ClaimOutcome::Refused(ClaimReason::SoldOut)
    );
    assert_eq!(store.claims(&id).await.expect("claims").len(), 3);
}

pub async fn many_triggers_hold_one_draw<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "draw-once", 10, 1, 900).await;
    let n = 50u64;
    let enter: Vec<ClaimRequest> = (0..n)
        .map(|i| entry(&id, &format!("v{i}"), "r", T0 + 10 + i, shuffled(i, n)))
        .collect();
    let entered = storm(&store, enter).await;
    assert!(entered.iter().all(|o| *o == ENTERED), "{entered:?}");
    // Every entrant asks again and 20 newcomers claim, all at once, at the draw's time.
    let mut asks: Vec<ClaimRequest> = (0..n)
        .map(|i| entry(&id, &format!("v{i}"), "r", DRAW_AT, 0))
        .collect();
    asks.extend((0..20).map(|i| entry(&id, &format!("new{i}"), "r", DRAW_AT + 1, 0)));
    let outcomes = storm(&store, asks).await;
    let won = granted(&outcomes);
    assert_eq!(won.len(), 10);
    assert_eq!(refused(&outcomes, ClaimReason::SoldOut), 60);
    // The draw came first: every grant is an entrant's, the ten lowest tickets.
    let winners: HashSet<&str> = won.iter().map(|c| c.viewer_id.as_str()).collect();
    let lowest: HashSet<String> = (0..n)
        .filter(|i| shuffled(*i, n) < 10 * 1000)
        .map(|i| format!("v{i}"))
        .collect();
    assert_eq!(
        winners,
        lowest.iter().map(String::as_str).collect::<HashSet<_>>()
    );
    let ranks: HashSet<u32> = won.iter().map(|c| c.rank).collect();
    assert_eq!(ranks, (0..10).collect());
    assert_eq!(store.claims(&id).await.expect("claims").len(), 10);
}

pub async fn an_erased_entrant_is_drawn_under_its_tombstone<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "draw-erase", 1, 1, 900).await;
    // An erasure reaches every drop: this viewer is this case's alone.
    let ana = format!("ana-{}", id.as_str());
    assert_eq!(
        store
            .claim(entry(&id, &ana, "r", T0 + 1, 5))
            .await
            .expect("enter"),
        ENTERED
    );
    assert_eq!(
        store
            .claim(entry(&id, "bob", "r", T0 + 2, 9))
            .await
            .expect("enter"),
        ENTERED
    );
    let tomb = format!("erased-{}", id.as_str());
    store.erase_viewer(&ana, &tomb).await.expect("erase");
    // The draw grants the tombstone's entry (ticket 5), never the erased id.
    let won = store
        .claim(entry(&id, &tomb, "r", DRAW_AT, 0))
        .await
        .expect("draw");
    let won = claim_of(&won);
    assert_eq!(won.viewer_id, tomb);
    assert_eq!(won.handle, crate::ERASED_HANDLE);
    assert_eq!(
        store
            .claim(entry(&id, "bob", "r", DRAW_AT, 0))
            .await
            .expect("bob"),
        ClaimOutcome::Refused(ClaimReason::SoldOut)
    );
    let claims = store.claims(&id).await.expect("claims");
    assert!(claims.iter().all(|c| c.viewer_id != ana), "{claims:?}");
}
