//! The ledger as the hub feeds it: facts of a drop's life and its claims, the
//! reconciliation that writes what the feed missed (and settles finished drops), and the
//! privacy requests (export, erasure) across the ledger and the store.

use crate::common;

use std::collections::HashSet;

use anyhow::{Context, Result};
use common::TestServer;
use dropwire_core::{DropId, FactKind};
use dropwire_funnel::FactFilter;
use dropwire_server::funnel::reconcile_once;
use dropwire_store::ClaimRequest;
use serde_json::{Value, json};

fn kinds(facts: &[dropwire_funnel::StoredFact]) -> Vec<&str> {
    facts.iter().map(|f| f.fact.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_and_its_claims_reach_the_ledger_once() -> Result<()> {
    let server = TestServer::start().await?;
    let ledger = server.state.ledger()?.clone();
    let drop = server
        .create(common::drop_spec("fed", 5, 1, common::far_script()))
        .await?;
    let mut ana = server.watch_as(&drop, "ana").await?;
    let (_, ana_id) = server
        .join(&drop, Some(&server.mint("ana2").await?), None)
        .await?;
    server.start_and_reveal(&drop).await?;
    let granted = ana.claim("mug", "r1").await?;
    let again = ana.claim("mug", "r1").await?;
    assert_eq!(granted["code"], again["code"]);
    let code = granted["code"].as_str().context("code")?.to_owned();
    server
        .ok(&format!("/api/v1/claims/{code}/redeem"), json!({}))
        .await?;
    let filter = FactFilter {
        drop_id: Some(drop.clone()),
        ..Default::default()
    };
    common::eventually("the feed wrote the facts", || {
        let (ledger, filter) = (&ledger, &filter);
        async move {
            let facts = ledger.facts(filter).await?;
            Ok(kinds(&facts).contains(&"claim.redeemed"))
        }
    })
    .await?;
    let facts = ledger.facts(&filter).await?;
    let mut seen = kinds(&facts);
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            "claim.granted",
            "claim.redeemed",
            "drop.live",
            "drop.scheduled",
            "viewer.attended",
            "viewer.attended"
        ],
        "each once, though the claim was answered twice and the drop has a hub per start"
    );
    let redeemed = facts
        .iter()
        .find(|f| f.fact.kind == FactKind::ClaimRedeemed)
        .context("redeemed")?;
    assert_eq!(redeemed.fact.detail["amount_cents"], 3400);
    assert_eq!(redeemed.fact.detail["currency"], "EUR");
    assert!(ana_id["viewer_id"].is_string());
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_writes_what_the_feed_missed_and_settles_finished_drops() -> Result<()> {
    let server = TestServer::start().await?;
    let ledger = server.state.ledger()?.clone();
    let store = server.store();
    let drop = server
        .create(common::drop_spec("missed", 5, 1, common::far_script()))
        .await?;
    server.start_and_reveal(&drop).await?;
    let id = DropId::parse(&drop)?;
    // Claims straight in the store: the feed never hears of them (as after a crash).
    let now = server.state.clock.now_ms();
    for i in 0..3 {
        store
            .claim(ClaimRequest {
                drop_id: id.clone(),
                sku: "mug".into(),
                viewer_id: format!("v{i}"),
                handle: format!("v{i}"),
                rid: "r".into(),
                now_ms: now,
                refusal: None,
                members_only: false,
                per_viewer_limit: None,
                draw_at_ms: None,
                ticket: None,
            })
            .await?;
    }
    let mut settled = HashSet::new();
    let first = reconcile_once(&*store, &ledger, &server.state.keys, now, &mut settled).await?;
    assert!(first.written >= 3, "{first:?}");
    assert_eq!(ledger.count(&drop, FactKind::ClaimGranted).await?, 3);
    let second = reconcile_once(&*store, &ledger, &server.state.keys, now, &mut settled).await?;
    assert_eq!(second.written, 0, "nothing twice");
    assert_eq!(second.settled, 0, "live, with claims held");

    server
        .ok(&format!("/api/v1/drops/{drop}/close"), json!({}))
        .await?;
    for c in store.claims(&id).await? {
        store.redeem(&c.code, now + 1).await?;
    }
    let third = reconcile_once(&*store, &ledger, &server.state.keys, now + 2, &mut settled).await?;
    assert_eq!(
        (
            third.settled,
            ledger.count(&drop, FactKind::ClaimRedeemed).await?
        ),
        (1, 3)
    );
    assert_eq!(ledger.count(&drop, FactKind::DropClosed).await?, 1);
    let fourth = reconcile_once(
        &*store,
        &ledger,
        &server.state.keys,
        now + 3,
        &mut HashSet::new(),
    )
    .await?;
    assert_eq!(
        fourth.drops, 0,
        "a settled drop is never read again, across restarts too"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_shows_a_viewer_and_erasure_leaves_nothing_personal() -> Result<()> {
    let server = TestServer::start().await?;
    let mut spec = common::drop_spec("privacy", 5, 1, common::far_script());
    spec["early_access_s"] = json!(60);
    let drop = server.create(spec).await?;
    let token = server.mint("Ana Lovelace").await?;
    let viewer_id = server
        .state
        .keys
        .verify(&token, server.state.clock.now_ms() / 1000)
        .context("token")?
        .id;
    let resp = server
        .http
        .post(format!("{}/api/v1/drops/{drop}/waitlist", server.base))
        .bearer_auth(&token)
        .json(&json!({"intent": {"note": "call me"}, "consent": {"marketing": true}, "contact": "ana@example.com"}))
        .send()
        .await?;
    assert_eq!(resp.status(), 201);
    let (mut ana, _) = server.join(&drop, Some(&token), None).await?;
    server.start_and_reveal(&drop).await?;
    let granted = ana.claim("mug", "r1").await?;
    assert_eq!(
        granted["ok"], true,
        "a waitlisted viewer claims early: {granted}"
    );
    let code = granted["code"].as_str().context("code")?.to_owned();
    server
        .state
        .funnel
        .as_ref()
        .context("ledger")?
        .feed
        .flush(common::PATIENCE)
        .await;

    let (status, export) = server
        .get(&format!("/api/v1/viewers/{viewer_id}/export"))
        .await?;
    assert_eq!(status, 200);
    let text = export.to_string();
    for personal in ["ana@example.com", "call me", code.as_str(), "Ana Lovelace"] {
        assert!(
            text.contains(personal),
            "the export has {personal:?}: {text}"
        );
    }
    let exported: Vec<&str> = export["facts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for kind in ["waitlist.joined", "viewer.attended", "claim.granted"] {
        assert!(exported.contains(&kind), "{kind} in {exported:?}");
    }

    let resp = server
        .http
        .delete(format!("{}/api/v1/viewers/{viewer_id}", server.base))
        .bearer_auth(common::ADMIN)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let erased: Value = resp.json().await?;
    assert_eq!(
        (
            erased["erased"]["waitlist"].clone(),
            erased["erased"]["claims"].clone()
        ),
        (json!(1), json!(1))
    );
    let (_, after) = server
        .get(&format!("/api/v1/viewers/{viewer_id}/export"))
        .await?;
    assert_eq!(
        (
            after["facts"].clone(),
            after["waitlist"].clone(),
            after["claims"].clone()
        ),
        (json!([]), json!([]), json!([]))
    );
    // Counts stay right, and nothing personal is left anywhere the maker can read.
    let (_, list) = server
        .get(&format!("/api/v1/drops/{drop}/waitlist"))
        .await?;
    assert_eq!(list["count"], 1);
    let (_, claims) = server.get(&format!("/api/v1/drops/{drop}/claims")).await?;
    assert_eq!(claims["claims"].as_array().map(Vec::len), Some(1));
    let (_, stats) = server.get(&format!("/api/v1/drops/{drop}/stats")).await?;
    assert_eq!(stats["claimers"], 1);
    let (_, facts) = server
        .get(&format!("/api/v1/ledger/facts?drop={drop}"))
        .await?;
    for view in [list, claims, facts, stats] {
        let text = view.to_string();
        for personal in [
            viewer_id.as_str(),
            "ana@example.com",
            "call me",
            "Ana Lovelace",
        ] {
            assert!(!text.contains(personal), "{personal:?} left in {text}");
        }
    }
    assert_eq!(
        server
            .ok(&format!("/api/v1/claims/{code}/redeem"), json!({}))
            .await?["state"],
        "redeemed",
        "the sale still goes through"
    );
    let (status, _) = server
        .get(&format!("/api/v1/viewers/{}/export", "x".repeat(129)))
        .await?;
    assert_eq!(status, 400);
    server.stop().await
}
