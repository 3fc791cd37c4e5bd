//! The ledger's conformance suite: one function per guarantee, run against every backend
//! (SQLite and a real PostgreSQL) by [`ledger_conformance_tests!`](crate::ledger_conformance_tests).
//! Each function uses its own fresh drop and viewer names, so the suite may share a database.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use dropwire_core::waitlist::{Consent, Intent, WaitlistJoin};
use dropwire_core::{Fact, FactKind};
use serde_json::json;

use crate::{FactFilter, Ledger};

pub use dropwire_testkit::PgServer;

mod coops;
pub mod history;
mod makers;
mod outbox;
mod passes;
mod recipes;
pub use coops::{
    coop_kpis_sum_the_members_and_recompute_the_ratios, coops_are_kept_with_their_makers,
};
pub use makers::makers_and_their_tokens_are_kept_and_revoked;
pub use outbox::{
    a_fact_and_its_messages_are_written_together,
    a_follow_up_coupon_is_redeemed_once_within_its_validity,
    a_message_is_leased_once_retried_and_dead_lettered,
    nurture_timers_follow_a_redemption_and_fire_once,
};
pub use passes::{
    pass_rules_are_kept_per_maker_and_passes_earned_once, rules_are_validated,
    the_signing_secret_is_stored_once,
};
pub use recipes::{recipes_are_versioned_and_kept_per_maker, shipped_recipes_load_once};

/// Expands to one `#[tokio::test]` per guarantee, each getting a ledger from `$make`.
#[macro_export]
macro_rules! ledger_conformance_tests {
    ($make:expr) => {
        $crate::ledger_conformance_tests!(@each $make;
            a_fact_is_recorded_once,
            many_writers_at_once_keep_each_fact_once,
            the_feed_filters_and_pages,
            a_waitlist_join_is_idempotent_and_keeps_its_place,
            joins_of_one_viewer_at_once_make_one_entry,
            export_shows_a_viewer_and_erasure_unlinks_it,
            reconciled_drops_are_remembered,
            a_fact_and_its_messages_are_written_together,
            a_message_is_leased_once_retried_and_dead_lettered,
            a_follow_up_coupon_is_redeemed_once_within_its_validity,
            nurture_timers_follow_a_redemption_and_fire_once,
            recipes_are_versioned_and_kept_per_maker,
            shipped_recipes_load_once,
            makers_and_their_tokens_are_kept_and_revoked,
            coops_are_kept_with_their_makers,
            coop_kpis_sum_the_members_and_recompute_the_ratios,
            pass_rules_are_kept_per_maker_and_passes_earned_once,
            the_signing_secret_is_stored_once
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let ledger = $make.await;
                $crate::conformance::$name(&ledger).await;
            }
        )*
    };
}

const T0: u64 = 1_800_000_000_000;

/// A name no other test uses (in this process or another sharing the database).
pub fn fresh(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn claim_fact(drop: &str, viewer: &str, code: &str, at: u64) -> Fact {
    Fact {
        id: format!("claim.granted:{drop}:{code}"),
        kind: FactKind::ClaimGranted,
        maker: "default".into(),
        drop_id: Some(drop.into()),
        viewer_id: Some(viewer.into()),
        at_ms: at,
        detail: json!({"code": code, "sku": "mug", "price_cents": 3400}),
    }
}

fn join(size: Option<&str>, contact: Option<&str>) -> WaitlistJoin {
    WaitlistJoin {
        intent: Intent {
            size: size.map(str::to_owned),
            items: vec!["mug".into()],
            note: Some("the blue one please".into()),
        },
        consent: Consent {
            marketing: contact.is_some(),
        },
        contact: contact.map(str::to_owned),
    }
}

pub async fn a_fact_is_recorded_once(ledger: &Ledger) {
    let drop = fresh("once");
    let facts: Vec<Fact> = (0..250)
        .map(|i| claim_fact(&drop, &format!("v{i}"), &format!("C{i}"), T0 + i))
        .collect();
    assert_eq!(ledger.record(&facts).await.expect("record"), 250);
    assert_eq!(ledger.record(&facts).await.expect("again"), 0, "a no-op");
    assert_eq!(ledger.record(&facts[100..120]).await.expect("part"), 0);
    assert_eq!(ledger.record(&[]).await.expect("none"), 0);
    let read = ledger
        .facts(&FactFilter {
            drop_id: Some(drop.clone()),
            ..Default::default()
        })
        .await
        .expect("read");
    assert_eq!(read.len(), 250);
    assert_eq!(
        read.iter().map(|s| s.fact.clone()).collect::<Vec<_>>(),
        facts,
        "read back as written, in order"
    );
    assert!(read.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        ledger
            .count(&drop, FactKind::ClaimGranted)
            .await
            .expect("count"),
        250
    );
}

pub async fn many_writers_at_once_keep_each_fact_once(ledger: &Ledger) {
    let drop = fresh("writers");
    // Eight writers, each a batch of 200 overlapping with its neighbours': 1,000 ids.
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let ledger = ledger.clone();
            let drop = drop.clone();
            tokio::spawn(async move {
                let facts: Vec<Fact> = (w * 100..w * 100 + 200)
                    .map(|i| claim_fact(&drop, "v", &format!("C{i}"), T0 + i))
                    .collect();
                ledger.record(&facts).await.expect("record")
            })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        new += t.await.expect("task");
    }
    assert_eq!(new, 900, "each id counted new exactly once");
    let n = ledger
        .count(&drop, FactKind::ClaimGranted)
        .await
        .expect("count");
    assert_eq!(n, 900);
}

pub async fn the_feed_filters_and_pages(ledger: &Ledger) {
    let drop = fresh("feed");
    let mut facts = vec![
        Fact::attended(&drop, "ana", T0),
        Fact::attended(&drop, "bo", T0 + 1),
    ];
    facts.push(claim_fact(&drop, "ana", "A1", T0 + 2));
    facts.push(claim_fact(&drop, "bo", "B1", T0 + 3));
    ledger.record(&facts).await.expect("record");
    let get = |filter: FactFilter| {
        let filter = FactFilter {
            drop_id: Some(drop.clone()),
            ..filter
        };
        async move { ledger.facts(&filter).await.expect("read") }
    };
    let ana = get(FactFilter {
        viewer_id: Some("ana".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(ana.len(), 2);
    let claims = get(FactFilter {
        kind: Some(FactKind::ClaimGranted),
        ..Default::default()
    })
    .await;
    assert_eq!(claims.len(), 2);
    let first = get(FactFilter {
        limit: Some(3),
        ..Default::default()
    })
    .await;
    assert_eq!(first.len(), 3);
    let rest = get(FactFilter {
        after: Some(first[2].seq),
        ..Default::default()
    })
    .await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].fact.id, facts[3].id);
}

pub async fn a_waitlist_join_is_idempotent_and_keeps_its_place(ledger: &Ledger) {
    let drop = fresh("waitlist");
    let a = ledger
        .join_waitlist(&drop, "ana", "Ana", &join(Some("M"), None), "u1", T0)
        .await
        .expect("join");
    assert!(a.created);
    assert_eq!(a.entry.position, 1);
    let b = ledger
        .join_waitlist(
            &drop,
            "bo",
            "Bo",
            &join(None, Some("bo@example.com")),
            "u2",
            T0 + 1,
        )
        .await
        .expect("join");
    assert_eq!((b.created, b.entry.position), (true, 2));
    let again = ledger
        .join_waitlist(&drop, "ana", "Ana", &join(Some("L"), None), "u3", T0 + 2)
        .await
        .expect("update");
    assert!(!again.created);
    assert_eq!(again.entry.position, 1, "an update keeps the place");
    assert_eq!(again.entry.intent.size.as_deref(), Some("L"));
    assert_eq!(
        (again.entry.joined_ms, again.entry.updated_ms),
        (T0, T0 + 2)
    );
    let all = ledger.waitlist(&drop).await.expect("list");
    assert_eq!(
        all.iter()
            .map(|e| (e.viewer_id.as_str(), e.position))
            .collect::<Vec<_>>(),
        [("ana", 1), ("bo", 2)]
    );
    assert_eq!(all[1].contact.as_deref(), Some("bo@example.com"));
    assert_eq!(
        ledger.waitlist_entry(&drop, "bo").await.expect("entry"),
        Some(all[1].clone())
    );
    assert_eq!(
        ledger.waitlist_entry(&drop, "cy").await.expect("entry"),
        None
    );
    assert_eq!(ledger.waitlisted(&drop).await.expect("ids"), ["ana", "bo"]);
    let count = |kind| ledger.count(&drop, kind);
    assert_eq!(count(FactKind::WaitlistJoined).await.expect("n"), 2);
    assert_eq!(count(FactKind::WaitlistUpdated).await.expect("n"), 1);
}

pub async fn joins_of_one_viewer_at_once_make_one_entry(ledger: &Ledger) {
    let drop = fresh("join-race");
    let tasks: Vec<_> = (0..20u64)
        .map(|i| {
            let ledger = ledger.clone();
            let drop = drop.clone();
            tokio::spawn(async move {
                ledger
                    .join_waitlist(
                        &drop,
                        "ana",
                        "Ana",
                        &join(None, None),
                        &format!("u{i}"),
                        T0 + i,
                    )
                    .await
                    .expect("join")
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let joined = t.await.expect("task");
        created += usize::from(joined.created);
        assert_eq!(joined.entry.position, 1);
    }
    assert_eq!(created, 1);
    assert_eq!(ledger.waitlist(&drop).await.expect("list").len(), 1);
    let joined = ledger
        .count(&drop, FactKind::WaitlistJoined)
        .await
        .expect("n");
    let updated = ledger
        .count(&drop, FactKind::WaitlistUpdated)
        .await
        .expect("n");
    assert_eq!((joined, updated), (1, 19));
}

pub async fn export_shows_a_viewer_and_erasure_unlinks_it(ledger: &Ledger) {
    let drop = fresh("privacy");
    let ana = fresh("ana");
    ledger
        .join_waitlist(
            &drop,
            &ana,
            "Ana",
            &join(Some("M"), Some("ana@example.com")),
            "u1",
            T0,
        )
        .await
        .expect("join");
    ledger
        .join_waitlist(&drop, "bo", "Bo", &join(None, None), "u2", T0)
        .await
        .expect("join");
    let claim = claim_fact(&drop, &ana, "A1", T0 + 5);
    ledger
        .record(&[Fact::attended(&drop, &ana, T0 + 1), claim.clone()])
        .await
        .expect("record");

    let export = ledger.export_viewer(&ana).await.expect("export");
    assert_eq!(export.facts.len(), 3, "joined, attended, granted");
    assert_eq!(export.waitlist.len(), 1);
    assert_eq!(
        export.waitlist[0].contact.as_deref(),
        Some("ana@example.com")
    );

    let tomb = fresh("erased");
    let erased = ledger
        .erase_viewer(&ana, &tomb, T0 + 9)
        .await
        .expect("erase");
    assert_eq!((erased.facts, erased.waitlist), (3, 1));
    let gone = ledger.export_viewer(&ana).await.expect("export");
    assert!(
        gone.facts.is_empty() && gone.waitlist.is_empty(),
        "{gone:?}"
    );

    let kept = ledger.export_viewer(&tomb).await.expect("export");
    assert_eq!(kept.facts.len(), 4, "the three facts and the tombstone");
    let text = serde_json::to_string(&kept).expect("json");
    for personal in [ana.as_str(), "ana@example.com", "the blue one", "Ana"] {
        assert!(!text.contains(personal), "{personal:?} left in {text}");
    }
    assert_eq!(kept.waitlist[0].position, 1, "the line keeps its order");
    assert_eq!(
        kept.waitlist[0].intent.size.as_deref(),
        Some("M"),
        "segments stay right"
    );
    // Counts stay right, and the claim fact (written again by a reconciliation) stays once.
    let count = |kind| ledger.count(&drop, kind);
    assert_eq!(count(FactKind::WaitlistJoined).await.expect("n"), 2);
    assert_eq!(count(FactKind::ViewerAttended).await.expect("n"), 1);
    let mut again = claim;
    again.viewer_id = Some(tomb.clone());
    assert_eq!(ledger.record(&[again]).await.expect("record"), 0);
    assert_eq!(count(FactKind::ClaimGranted).await.expect("n"), 1);
    let tombstones = ledger
        .facts(&FactFilter {
            viewer_id: Some(tomb),
            kind: Some(FactKind::ViewerErased),
            ..Default::default()
        })
        .await
        .expect("read");
    assert_eq!(tombstones.len(), 1);
}

pub async fn reconciled_drops_are_remembered(ledger: &Ledger) {
    let (a, b) = (fresh("settled"), fresh("settled"));
    ledger.mark_reconciled(&a, T0).await.expect("mark");
    ledger.mark_reconciled(&a, T0 + 1).await.expect("twice");
    let all: HashSet<String> = ledger
        .reconciled()
        .await
        .expect("list")
        .into_iter()
        .collect();
    assert!(all.contains(&a) && !all.contains(&b));
}
