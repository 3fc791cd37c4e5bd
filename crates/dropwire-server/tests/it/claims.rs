//! Claims over real sockets: exact allocation under a storm, limits, idempotency, tokens,
//! windows, redemption, unique coupons, the leaderboard.

use crate::common;

use std::collections::HashSet;

use anyhow::Result;
use common::{TestServer, Viewer, claim_all, drop_spec, far_script, tally};
use futures_util::future::try_join_all;
use serde_json::{Value, json};

/// Joins `n` viewers with tokens, starts the drop and reveals `mug`.
async fn revealed(server: &TestServer, id: &str, n: usize) -> Result<Vec<Viewer>> {
    let mut viewers = Vec::new();
    for i in 0..n {
        let token = server.mint(&format!("viewer{i}")).await?;
        let (mut v, welcome) = server.join(id, Some(&token), None).await?;
        assert!(welcome["viewer_id"].is_string());
        v.next_of("snapshot").await?;
        viewers.push(v);
    }
    server.start_and_reveal(id).await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;
    Ok(viewers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_viewers_race_for_forty_mugs() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("storm", 40, 1, far_script()))
        .await?;
    let mut viewers = revealed(&server, &id, 500).await?;
    let results = claim_all(&mut viewers, "mug").await?;
    let (ok, codes, sold_out, _) = tally(&results);
    assert_eq!((ok, codes.len(), sold_out), (40, 40, 460));

    let (_, claims) = server.get(&format!("/api/v1/drops/{id}/claims")).await?;
    let listed: HashSet<String> = claims["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        listed, codes,
        "the store and the viewers agree on every code"
    );
    let (_, stats) = server.get(&format!("/api/v1/drops/{id}/stats")).await?;
    assert_eq!(stats["claims"]["held"], 40);
    assert_eq!(stats["stock"][0], json!({"sku": "mug", "left": 0}));
    assert_eq!(stats["claimers"], 40);

    // Retrying a rid gets the same answer, granted or refused.
    let again = viewers[0].claim("mug", "r0").await?;
    assert_eq!(again, results[0]);
    let again = viewers[499].claim("mug", "r499").await?;
    assert_eq!(again, results[499]);
    // Every one of the 502 claims was decided by the store, and timed.
    let timed = server.state.metrics.claim_store_seconds.get_sample_count();
    assert_eq!(timed, 502);
    // Everyone hears that the mugs are gone (a stock count published mid-storm may come
    // first, even before the viewer's own answer; counts only go down, the last says 0).
    let counts = common::until_sold_out(&mut viewers[7], "mug").await?;
    assert!(
        counts.windows(2).all(|w| w[1] < w[0]),
        "stock counts only go down: {counts:?}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_limit_of_two_nobody_gets_a_third() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("storm-two", 40, 2, far_script()))
        .await?;
    let mut viewers = revealed(&server, &id, 30).await?;
    let results = try_join_all(viewers.iter_mut().enumerate().map(|(i, v)| async move {
        let a = v.claim("mug", &format!("a{i}")).await?;
        let b = v.claim("mug", &format!("b{i}")).await?;
        let c = v.claim("mug", &format!("c{i}")).await?;
        anyhow::Ok(vec![a, b, c])
    }))
    .await?;
    let all: Vec<Value> = results.iter().flatten().cloned().collect();
    let (ok, codes, _, _) = tally(&all);
    assert_eq!((ok, codes.len()), (40, 40));
    for per_viewer in &results {
        assert_ne!(per_viewer[2]["ok"], true, "a third claim is never granted");
        if per_viewer[0]["ok"] == true && per_viewer[1]["ok"] == true {
            assert_eq!(per_viewer[2]["reason"], "limit_reached");
        }
    }
    assert!(results.iter().any(|r| r[2]["reason"] == "limit_reached"));
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_windows_and_redemption() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("rules", 3, 1, far_script()))
        .await?;
    let keys = dropwire_server::auth::Keys::new(common::ADMIN.into(), None);
    let now_s = server.state.clock.now_ms() / 1000;
    let expired = keys.mint(
        "old",
        "old",
        now_s - dropwire_server::auth::VIEWER_TOKEN_TTL_S - 60,
    )?;
    let other_hub = dropwire_server::auth::Keys::new("some-other-hub-admin-token".into(), None)
        .mint("x", "x", now_s)?;

    let token = server.mint("ana").await?;
    let (mut ana, _) = server.join(&id, Some(&token), None).await?;
    ana.next_of("snapshot").await?;
    assert_eq!(
        ana.claim("mug", "early").await?["reason"],
        "not_open",
        "scheduled"
    );
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    assert_eq!(
        ana.claim("mug", "early2").await?["reason"],
        "not_open",
        "not revealed yet"
    );
    server
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 1}))
        .await?;
    ana.cue("reveal").await?;

    for bad in [Some(expired.as_str()), Some(other_hub.as_str()), None] {
        let (mut v, welcome) = server.join(&id, bad, None).await?;
        assert_eq!(welcome["viewer_id"], Value::Null);
        assert_eq!(v.claim("mug", "r").await?["reason"], "unauthorized");
    }
    let got = ana.claim("mug", "r1").await?;
    assert_eq!(got["ok"], true);
    assert_eq!(ana.claim("mug", "r2").await?["reason"], "limit_reached");
    assert_eq!(
        ana.claim("jug", "r3").await?["reason"],
        "not_open",
        "jug was never revealed"
    );

    let code = got["code"].as_str().unwrap_or_default().to_owned();
    let lower = code.to_lowercase();
    let redeemed = server
        .ok(&format!("/api/v1/claims/{lower}/redeem"), json!({}))
        .await?;
    assert_eq!(
        (redeemed["state"].as_str(), redeemed["code"].as_str()),
        (Some("redeemed"), Some(code.as_str()))
    );
    let (status, body) = server
        .post(&format!("/api/v1/claims/{code}/redeem"), json!({}))
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_held"))
    );

    let board = ana.next_of("leaderboard").await?;
    assert_eq!(
        board["top"][0],
        json!({"rank": 1, "handle": "ana", "points": 100})
    );

    server
        .ok(&format!("/api/v1/drops/{id}/close"), json!({}))
        .await?;
    ana.state("closed").await?;
    assert_eq!(ana.claim("mug", "late").await?["reason"], "closed");
    // A rid decided before the close keeps its answer (its reply may have been lost).
    assert_eq!(ana.claim("mug", "r1").await?, got);
    assert_eq!(ana.claim("mug", "r2").await?["reason"], "limit_reached");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_coupon_hands_out_exactly_its_limit() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("coupons", 3, 1, far_script()))
        .await?;
    let mut viewers = revealed(&server, &id, 6).await?;
    let coupon = json!({"cue": {"type": "flash_coupon", "unique": true, "limit": 4, "percent_off": 15, "ttl_s": 60, "title": "15% for four of you"}});
    server
        .ok(&format!("/api/v1/drops/{id}/fire"), coupon)
        .await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("flash_coupon"))).await?;
    let results = try_join_all(viewers.iter_mut().map(|v| async move {
        v.send(json!({"type": "coupon", "rid": "c1"})).await?;
        v.next_of("coupon_result").await
    }))
    .await?;
    let codes: HashSet<&str> = results.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(codes.len(), 4);
    assert_eq!(
        results.iter().filter(|r| r["reason"] == "sold_out").count(),
        2
    );
    let winner = results.iter().position(|r| r["ok"] == true).unwrap_or(0);
    viewers[winner]
        .send(json!({"type": "coupon", "rid": "c2"}))
        .await?;
    let again = viewers[winner].next_of("coupon_result").await?;
    assert_eq!(
        again["code"], results[winner]["code"],
        "the same viewer keeps its code"
    );
    assert_eq!(again["percent_off"], 15);
    server.stop().await
}
