//! Fair start over real WebSockets, on tokio's paused clock (the hub's clock follows it):
//! claims inside a SKU's window are entered (`draw_entered` at once), and at the draw's
//! time each entrant's connection asks again and hears its drawn `claim_result`: exactly
//! `stock` grants, dated at the draw, ranked in draw order; later claims are first come,
//! first served.

use crate::common;

use std::collections::HashSet;

use anyhow::Result;
use common::{TestServer, Viewer, drop_spec, far_script};
use dropwire_server::clock::Clock;
use futures_util::future::try_join_all;
use serde_json::{Value, json};

/// A drop whose `mug` (stock `stock`, limit 1) has a fair start of `fair_ms`.
fn fair_spec(id: &str, stock: u32, fair_ms: u32) -> Value {
    let mut spec = drop_spec(id, stock, 1, far_script());
    spec["inventory"][0]["fair_start_ms"] = json!(fair_ms);
    spec
}

async fn viewers(server: &TestServer, id: &str, who: &str, n: usize) -> Result<Vec<Viewer>> {
    let keys = dropwire_server::auth::Keys::new(common::ADMIN.into(), None);
    let now_s = server.state.clock.now_ms() / 1000;
    let mut out = Vec::new();
    for i in 0..n {
        let token = keys.mint(&format!("{who}{i}"), &format!("{who}-viewer{i}"), now_s)?;
        let (mut v, _) = server.join(id, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        out.push(v);
    }
    Ok(out)
}

#[tokio::test(start_paused = true)]
async fn ten_entrants_get_draw_entered_then_exactly_stock_grants_at_the_draw() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.clock = Clock::tokio_anchored();
    let server = TestServer::with(opts).await?;
    let id = server.create(fair_spec("fair", 3, 2000)).await?;
    let (_, drop) = server.get(&format!("/api/v1/drops/{id}")).await?;
    assert_eq!(drop["inventory"][0]["fair_start_ms"], 2000);
    let mut vs = viewers(&server, &id, "v", 10).await?;
    server.start_and_reveal(&id).await?;
    let mut reveal_ms = 0;
    for v in &mut vs {
        reveal_ms = v.cue("reveal").await?["at_ms"].as_u64().expect("at_ms");
    }
    let draw_at = reveal_ms + 2000;
    // Ten claims inside the window: each is entered at once.
    for (i, v) in vs.iter_mut().enumerate() {
        v.send(json!({"type": "claim", "sku": "mug", "rid": format!("r{i}")}))
            .await?;
        let entered = v.next_of("draw_entered").await?;
        assert_eq!(
            entered,
            json!({"type": "draw_entered", "rid": format!("r{i}"), "sku": "mug", "draw_at_ms": draw_at})
        );
    }
    // The same rid again before the draw: entered again, nothing granted yet.
    vs[0]
        .send(json!({"type": "claim", "sku": "mug", "rid": "r0"}))
        .await?;
    assert_eq!(vs[0].next_of("draw_entered").await?["rid"], "r0");
    let (_, claims) = server.get(&format!("/api/v1/drops/{id}/claims")).await?;
    assert_eq!(claims["claims"], json!([]));
    // At the draw's time every connection hears its result: 3 granted, 7 sold out.
    let mut results = Vec::new();
    for v in &mut vs {
        results.push(v.next_of("claim_result").await?);
    }
    let granted: Vec<&Value> = results.iter().filter(|r| r["ok"] == true).collect();
    assert_eq!(granted.len(), 3, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r["reason"] == "sold_out").count(),
        7
    );
    let (_, claims) = server.get(&format!("/api/v1/drops/{id}/claims")).await?;
    let listed = claims["claims"].as_array().expect("claims");
    assert_eq!(listed.len(), 3);
    let ranks: Vec<u64> = listed.iter().map(|c| c["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [0, 1, 2], "in draw order");
    let points: Vec<u64> = listed
        .iter()
        .map(|c| c["points"].as_u64().unwrap())
        .collect();
    assert_eq!(points, [100, 95, 90], "early-bird points by draw rank");
    for c in listed {
        assert_eq!(c["created_ms"], draw_at, "dated at the draw");
    }
    let codes: HashSet<&str> = granted
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    let listed_codes: HashSet<&str> = listed.iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, listed_codes);
    // Every viewer hears the stock go to 0.
    let counts = common::until_sold_out(&mut vs[5], "mug").await?;
    assert_eq!(counts.last(), Some(&0));
    // After the draw: first come, first served, answered at once (no draw_entered).
    let mut late = viewers(&server, &id, "late", 1).await?.remove(0);
    let answer = late.claim("mug", "late").await?;
    assert_eq!(answer["reason"], "sold_out");
    // Each entrant's rid keeps its drawn answer.
    for (i, v) in vs.iter_mut().enumerate() {
        assert_eq!(v.claim("mug", &format!("r{i}")).await?, results[i]);
    }
    let m = &server.state.metrics;
    assert_eq!(m.claims.with_label_values(&["entered"]).get(), 11);
    server.stop().await
}

/// Two hub nodes on one Redis, on the system clock: ten viewers spread over both claim
/// inside a 5 s window and are all entered; at the draw each node's entrants ask again,
/// from both nodes at once, and the store holds the draw once: exactly `stock` grants,
/// ranks 0..stock each once, every entrant's answer the same when asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_two_nodes_the_draw_happens_once() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = dropwire_store::testing::RedisServer::start();
    let nodes = [
        common::redis_node(&redis, "a", Clock::System).await?,
        common::redis_node(&redis, "b", Clock::System).await?,
    ];
    let id = nodes[0].create(fair_spec("fair-nodes", 3, 5000)).await?;
    let keys = dropwire_server::auth::Keys::new(common::ADMIN.into(), None);
    let now_s = nodes[0].state.clock.now_ms() / 1000;
    let mut vs = Vec::new();
    for i in 0..10 {
        let token = keys.mint(&format!("n{i}"), &format!("node-viewer{i}"), now_s)?;
        let (mut v, _) = nodes[i % 2].join(&id, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        vs.push(v);
    }
    nodes[1].start_and_reveal(&id).await?;
    try_join_all(vs.iter_mut().map(|v| v.cue("reveal"))).await?;
    // All ten claim at once, right after the reveal: every one is entered.
    let entered = try_join_all(vs.iter_mut().enumerate().map(|(i, v)| async move {
        v.send(json!({"type": "claim", "sku": "mug", "rid": format!("r{i}")}))
            .await?;
        v.next_of("draw_entered").await
    }))
    .await?;
    let draw_at = entered[0]["draw_at_ms"].clone();
    assert!(
        entered.iter().all(|e| e["draw_at_ms"] == draw_at),
        "{entered:?}"
    );
    // At the draw both nodes' connections ask again at once.
    let results = try_join_all(vs.iter_mut().map(|v| v.next_of("claim_result"))).await?;
    let (ok, codes, sold_out, _) = common::tally(&results);
    assert_eq!((ok, codes.len(), sold_out), (3, 3, 7), "{results:?}");
    let (_, claims) = nodes[1].get(&format!("/api/v1/drops/{id}/claims")).await?;
    let listed = claims["claims"].as_array().expect("claims");
    let ranks: HashSet<u64> = listed.iter().map(|c| c["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, HashSet::from([0, 1, 2]));
    assert!(listed.iter().all(|c| c["created_ms"] == draw_at));
    for (i, v) in vs.iter_mut().enumerate() {
        assert_eq!(v.claim("mug", &format!("r{i}")).await?, results[i]);
    }
    for node in nodes {
        node.stop().await?;
    }
    Ok(())
}
