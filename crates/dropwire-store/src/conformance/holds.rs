//! The suite's cases about a hold's life after its grant: redemption once, expiry returning
//! its unit to stock once, and a viewer whose hold expired claiming again.

use std::sync::Arc;

use dropwire_core::{ClaimOutcome, ClaimReason, ClaimState};

use super::fixtures::{EARLY, T0, new_drop, req};
use super::{granted, storm};
use crate::{Store, StoreError};

pub async fn redemption_moves_held_to_redeemed_once<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "redeem", 3, 1, 900).await;
    let ClaimOutcome::Granted(c) = store
        .claim(req(&id, "mug", "ana", "r", T0))
        .await
        .expect("claim")
    else {
        panic!("not granted")
    };
    let redeemed = store.redeem(&c.code, T0 + 1000).await.expect("redeem");
    assert_eq!(
        (redeemed.state, redeemed.redeemed_ms),
        (ClaimState::Redeemed, Some(T0 + 1000))
    );
    let twice = store.redeem(&c.code, T0 + 2000).await;
    assert!(
        matches!(
            twice,
            Err(StoreError::NotHeld {
                state: ClaimState::Redeemed,
                ..
            })
        ),
        "{twice:?}"
    );
    let unknown = dropwire_core::ClaimCode::from_random([7; 10]);
    assert!(matches!(
        store.redeem(&unknown, T0).await,
        Err(StoreError::NoSuchClaim(_))
    ));
    // A hold past its deadline is expired on the spot, even before any sweep.
    let ClaimOutcome::Granted(late) = store
        .claim(req(&id, "mug", "bo", "r", T0))
        .await
        .expect("claim")
    else {
        panic!("not granted")
    };
    let r = store.redeem(&late.code, late.hold_until_ms).await;
    assert!(
        matches!(
            r,
            Err(StoreError::NotHeld {
                state: ClaimState::Expired,
                ..
            })
        ),
        "{r:?}"
    );
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.redeemed, f.expired), (2, 1, 1));
}

pub async fn expiry_returns_stock_exactly_once<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "expiry", 10, 1, 60).await;
    let reqs = (0..10)
        .map(|i| req(&id, "mug", &format!("v{i}"), "r", T0))
        .collect();
    let won = granted(&storm(&store, reqs).await).len();
    assert_eq!(won, 10);
    assert!(
        store
            .expire_due(T0 + 59_999)
            .await
            .expect("sweep")
            .iter()
            .all(|c| c.drop_id != id)
    );
    // Two nodes sweeping at once: each claim is reported expired exactly once.
    let sweep = |store: Arc<S>| tokio::spawn(async move { store.expire_due(T0 + 60_000).await });
    let (a, b) = (sweep(Arc::clone(&store)), sweep(Arc::clone(&store)));
    let (a, b) = (a.await.expect("task"), b.await.expect("task"));
    let mut mine: Vec<_> = a
        .expect("sweep")
        .into_iter()
        .chain(b.expect("sweep"))
        .filter(|c| c.drop_id == id)
        .map(|c| c.code)
        .collect();
    let n = mine.len();
    mine.sort();
    mine.dedup();
    assert_eq!((n, mine.len()), (10, 10));
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.stock[0].left, f.held, f.expired), (10, 0, 10));
    assert!(
        store
            .claims(&id)
            .await
            .expect("claims")
            .iter()
            .all(|c| c.state == ClaimState::Expired && c.expired_ms == Some(T0 + 60_000))
    );
}

pub async fn an_expired_viewer_may_claim_again<S: Store>(store: Arc<S>) {
    // Sweeps expire the due holds of every drop; this one sweeps before any other test's
    // deadline, so the suite can share one backend.
    let id = new_drop(&*store, "again", 1, 1, 60).await;
    assert!(matches!(
        store
            .claim(req(&id, "mug", "ana", "r1", EARLY))
            .await
            .expect("claim"),
        ClaimOutcome::Granted(_)
    ));
    assert_eq!(
        store
            .claim(req(&id, "mug", "ana", "r2", EARLY))
            .await
            .expect("claim"),
        ClaimOutcome::Refused(ClaimReason::LimitReached)
    );
    store.expire_due(EARLY + 60_000).await.expect("sweep");
    let again = store
        .claim(req(&id, "mug", "ana", "r3", EARLY + 61_000))
        .await
        .expect("claim");
    let ClaimOutcome::Granted(c) = again else {
        panic!("{again:?}")
    };
    assert_eq!(c.rank, 1, "the second grant of the SKU");
}
