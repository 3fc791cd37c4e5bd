//! The suite's cases about what facts set off: webhook messages in the outbox (leased once,
//! retried, dead-lettered, replayed), follow-up coupons, nurture timers.

use dropwire_core::followup::{NurtureStep, Offer};
use dropwire_core::{Fact, FactKind};
use serde_json::json;

use super::fresh;
use crate::{CouponRefusal, Ledger, Outcome};

const T0: u64 = 1_800_000_000_000;

fn fact(
    kind: FactKind,
    drop: &str,
    viewer: &str,
    key: &str,
    at: u64,
    detail: serde_json::Value,
) -> Fact {
    Fact {
        id: format!("{kind}:{drop}:{key}"),
        kind,
        maker: "default".into(),
        drop_id: Some(drop.into()),
        viewer_id: Some(viewer.into()),
        at_ms: at,
        detail,
    }
}

pub async fn a_fact_and_its_messages_are_written_together(ledger: &Ledger) {
    let all = ledger
        .create_endpoint(
            "default",
            "http://a.example/hook",
            &["*".into()],
            "all",
            "whsec_AAAA",
            T0,
        )
        .await
        .expect("endpoint");
    let claims_only = ledger
        .create_endpoint(
            "default",
            "http://b.example/hook",
            &["claim.granted".into()],
            "",
            "whsec_BBBB",
            T0,
        )
        .await
        .expect("endpoint");
    let other_maker = ledger
        .create_endpoint(
            "someone-else",
            "http://c.example/hook",
            &["*".into()],
            "",
            "whsec_CCCC",
            T0,
        )
        .await
        .expect("endpoint");
    let drop = fresh("outbox");
    let granted = fact(
        FactKind::ClaimGranted,
        &drop,
        "ana",
        "C1",
        T0,
        json!({"code": "C1"}),
    );
    let attended = Fact::attended(&drop, "ana", T0);
    ledger
        .record(&[granted.clone(), attended.clone()])
        .await
        .expect("record");
    ledger
        .record(&[granted, attended])
        .await
        .expect("again: a no-op");
    let count = |id: String| async move {
        ledger
            .deliveries(&id, None, 1000)
            .await
            .expect("deliveries")
            .len()
    };
    assert_eq!(count(all.id.clone()).await, 2);
    assert_eq!(count(claims_only.id.clone()).await, 1);
    assert_eq!(count(other_maker.id.clone()).await, 0);
    // One message id per fact, the same for every endpoint.
    let to_b = ledger
        .deliveries(&claims_only.id, None, 10)
        .await
        .expect("deliveries");
    let to_a = ledger
        .deliveries(&all.id, None, 10)
        .await
        .expect("deliveries");
    assert!(
        to_a.iter()
            .any(|d| d.msg_id == to_b[0].msg_id && d.event == "claim.granted")
    );
    for ep in [all, claims_only, other_maker] {
        ledger
            .delete_endpoint(&ep.maker, &ep.id)
            .await
            .expect("delete");
    }
}

pub async fn a_message_is_leased_once_retried_and_dead_lettered(ledger: &Ledger) {
    let ep = ledger
        .create_endpoint(
            "default",
            "http://x.example/hook",
            &["viewer.attended".into()],
            "",
            "whsec_AAAA",
            T0,
        )
        .await
        .expect("endpoint");
    let drop = fresh("lease");
    let facts: Vec<Fact> = (0..5)
        .map(|i| Fact::attended(&drop, &format!("v{i}"), T0 + i))
        .collect();
    ledger.record(&facts).await.expect("record");
    let now = T0 + 100;
    let due = ledger.due_endpoints(now).await.expect("due");
    assert!(due.iter().any(|(id, n)| *id == ep.id && *n == 5), "{due:?}");
    // Two workers at once share the messages: none leased twice.
    let (a, b) = tokio::join!(
        ledger.lease_due(&ep.id, 3, now, now + 60_000),
        ledger.lease_due(&ep.id, 3, now, now + 60_000)
    );
    let (a, b) = (a.expect("lease"), b.expect("lease"));
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|m| m.msg_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every message leased once");
    assert_eq!(a.len() + b.len(), 5);
    assert!(
        ledger
            .lease_due(&ep.id, 10, now, now + 60_000)
            .await
            .expect("lease")
            .is_empty()
    );
    // A lease that ran out (its node died) is taken again.
    let again = ledger
        .lease_due(&ep.id, 10, now + 60_001, now + 120_000)
        .await
        .expect("lease");
    assert_eq!(again.len(), 5);
    let first = &again[0];
    assert_eq!(first.fact.fact.kind, FactKind::ViewerAttended);
    ledger
        .finish(
            first,
            &Outcome::Retry {
                status: Some(500),
                error: "answered 500".into(),
                next_ms: now + 70_000,
            },
            now + 60_001,
            12,
        )
        .await
        .expect("finish");
    let failing = ledger
        .target(&ep.id, now)
        .await
        .expect("target")
        .expect("exists");
    assert_eq!(failing.failing_since_ms, Some(now + 60_001));
    ledger
        .finish(
            first,
            &Outcome::Dead {
                status: Some(500),
                error: "answered 500".into(),
            },
            now + 70_000,
            9,
        )
        .await
        .expect("finish");
    for m in &again[1..] {
        ledger
            .finish(m, &Outcome::Delivered { status: 200 }, now + 70_001, 3)
            .await
            .expect("finish");
    }
    let healthy = ledger
        .target(&ep.id, now)
        .await
        .expect("target")
        .expect("exists");
    assert_eq!(healthy.failing_since_ms, None, "a success ends the streak");
    let dead = ledger
        .deliveries(&ep.id, Some("dead"), 10)
        .await
        .expect("deliveries");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].tries.len()), (2, 2));
    assert_eq!(dead[0].tries[0].status, Some(500));
    assert!(
        ledger
            .retry(&ep.id, &dead[0].msg_id, now + 80_000)
            .await
            .expect("retry")
    );
    assert_eq!(
        ledger
            .lease_due(&ep.id, 10, now + 80_000, now + 90_000)
            .await
            .expect("lease")
            .len(),
        1
    );
    assert_eq!(
        ledger
            .replay(&ep.id, T0, now + 90_001)
            .await
            .expect("replay"),
        5
    );
    assert!(
        ledger
            .disable_endpoint(&ep.id, "410", now)
            .await
            .expect("disable")
    );
    assert!(
        !ledger
            .disable_endpoint(&ep.id, "410", now)
            .await
            .expect("disable"),
        "once"
    );
    assert!(
        ledger
            .due_endpoints(now + 100_000)
            .await
            .expect("due")
            .iter()
            .all(|(id, _)| *id != ep.id)
    );
    // Finished messages are pruned once old enough; pending ones never.
    assert_eq!(
        ledger.prune_outbox(now + 200_000).await.expect("prune"),
        0,
        "all pending"
    );
    let replayed = ledger
        .lease_due(&ep.id, 10, now + 90_001, now + 99_000)
        .await
        .expect("lease");
    for m in &replayed {
        ledger
            .finish(m, &Outcome::Delivered { status: 204 }, now + 95_000, 1)
            .await
            .expect("finish");
    }
    assert_eq!(
        ledger.prune_outbox(now + 95_000).await.expect("prune"),
        0,
        "too recent"
    );
    assert_eq!(ledger.prune_outbox(now + 95_001).await.expect("prune"), 5);
    assert!(
        ledger
            .deliveries(&ep.id, None, 10)
            .await
            .expect("deliveries")
            .is_empty()
    );
    ledger
        .delete_endpoint("default", &ep.id)
        .await
        .expect("delete");
}

pub async fn a_follow_up_coupon_is_redeemed_once_within_its_validity(ledger: &Ledger) {
    let drop = fresh("coupon");
    let code = fresh("FU").to_uppercase();
    let confirmation = fact(
        FactKind::FollowupConfirmation,
        &drop,
        "ana",
        "C1",
        T0,
        json!({"code": "C1", "currency": "EUR", "coupon": {"code": code, "percent_off": 15, "expires_ms": T0 + 1000}}),
    );
    ledger
        .record(std::slice::from_ref(&confirmation))
        .await
        .expect("record");
    let mut other = confirmation;
    other.detail["coupon"]["code"] = json!("SOMETHING-ELSE");
    ledger.record(&[other]).await.expect("again");
    assert_eq!(
        ledger
            .coupon("default", "SOMETHING-ELSE")
            .await
            .expect("read"),
        None,
        "one coupon per claim"
    );
    assert_eq!(
        ledger
            .redeem_coupon("default", "NOPE", 100, T0)
            .await
            .expect("redeem"),
        Err(CouponRefusal::Unknown)
    );
    assert_eq!(
        ledger
            .redeem_coupon("someone-else", &code, 100, T0)
            .await
            .expect("redeem"),
        Err(CouponRefusal::Unknown)
    );
    let (a, b) = tokio::join!(
        ledger.redeem_coupon("default", &code, 2890, T0 + 10),
        ledger.redeem_coupon("default", &code, 2890, T0 + 10)
    );
    let wins = [a.expect("redeem"), b.expect("redeem")];
    assert_eq!(wins.iter().filter(|r| r.is_ok()).count(), 1, "{wins:?}");
    assert!(
        wins.iter()
            .any(|r| matches!(r, Err(CouponRefusal::AlreadyRedeemed(_))))
    );
    assert_eq!(
        ledger
            .count(&drop, FactKind::CouponRedeemed)
            .await
            .expect("n"),
        1
    );
    let drop2 = fresh("coupon");
    let late = fresh("FU").to_uppercase();
    ledger
        .record(&[fact(FactKind::FollowupConfirmation, &drop2, "bo", "C2", T0, json!({"code": "C2", "coupon": {"code": late, "percent_off": 15, "expires_ms": T0 + 1000}}))])
        .await
        .expect("record");
    assert!(matches!(
        ledger
            .redeem_coupon("default", &late, 100, T0 + 1000)
            .await
            .expect("redeem"),
        Err(CouponRefusal::Expired(_))
    ));
}

pub async fn nurture_timers_follow_a_redemption_and_fire_once(ledger: &Ledger) {
    let maker_steps = vec![
        NurtureStep {
            after_s: 10,
            offer: Offer::Coupon,
            detail: json!({"percent_off": 10}),
        },
        NurtureStep {
            after_s: 20,
            offer: Offer::Subscription,
            detail: json!({}),
        },
    ];
    ledger
        .set_nurture("default", &maker_steps)
        .await
        .expect("set");
    assert_eq!(ledger.nurture("default").await.expect("get"), maker_steps);
    let drop = fresh("nurture");
    let own = fresh("nurture-own");
    let scheduled = |d: &str, nurture: serde_json::Value| Fact {
        id: format!("drop.scheduled:{d}:"),
        kind: FactKind::DropScheduled,
        maker: "default".into(),
        drop_id: Some(d.into()),
        viewer_id: None,
        at_ms: T0,
        detail: json!({"nurture": nurture}),
    };
    let own_steps = json!([{"after_s": 5, "offer": "early_access_pass", "detail": {}}]);
    ledger
        .record(&[scheduled(&drop, json!(null)), scheduled(&own, own_steps)])
        .await
        .expect("record");
    let ana = fresh("ana");
    let redeemed = |d: &str, code: &str| {
        fact(
            FactKind::ClaimRedeemed,
            d,
            &ana,
            code,
            T0,
            json!({"code": code}),
        )
    };
    ledger
        .record(&[redeemed(&drop, "C1"), redeemed(&own, "C2")])
        .await
        .expect("record");
    ledger
        .record(&[redeemed(&drop, "C1")])
        .await
        .expect("again: no more timers");
    ledger
        .record(&[redeemed(&drop, "C3")])
        .await
        .expect("a second claim of the same buyer: no more timers either");
    let mine = |due: Vec<crate::DueTimer>| {
        due.into_iter()
            .filter(|t| t.viewer_id == ana)
            .collect::<Vec<_>>()
    };
    let due = mine(
        ledger
            .lease_timers(100, T0 + 5_000, T0 + 6_000)
            .await
            .expect("lease"),
    );
    assert_eq!(
        due.len(),
        1,
        "only the drop's own step is due at 5 s: {due:?}"
    );
    assert_eq!(due[0].step.offer, Offer::EarlyAccessPass);
    assert!(
        ledger
            .fire_timer(&due[0], None, T0 + 5_000)
            .await
            .expect("fire")
    );
    assert_eq!(
        ledger.count(&own, FactKind::NurtureOffer).await.expect("n"),
        1
    );
    let later = mine(
        ledger
            .lease_timers(100, T0 + 20_000, T0 + 80_000)
            .await
            .expect("lease"),
    );
    assert_eq!(later.len(), 2, "the maker's two steps (the own one fired)");
    // Two nodes fire the same timer: one records it.
    let (a, b) = tokio::join!(
        ledger.fire_timer(&later[0], None, T0 + 20_000),
        ledger.fire_timer(&later[0], None, T0 + 20_000)
    );
    assert_eq!(
        [a.expect("fire"), b.expect("fire")]
            .iter()
            .filter(|w| **w)
            .count(),
        1
    );
    assert!(
        ledger
            .fire_timer(&later[1], Some("no_consent"), T0 + 20_000)
            .await
            .expect("fire")
    );
    assert_eq!(
        ledger
            .count(&drop, FactKind::NurtureOffer)
            .await
            .expect("n"),
        1
    );
    assert_eq!(
        ledger
            .count(&drop, FactKind::NurtureSkipped)
            .await
            .expect("n"),
        1
    );
    assert!(!ledger.consented("default", &ana).await.expect("consent"));
    ledger.set_nurture("default", &[]).await.expect("reset");
}
