//! Stock across hub nodes on one Redis (started by the test on a free port): a product
//! revealed after a claim gets its stock out, and a unit returned by an expiry that a node
//! without any viewers of the drop swept reaches the viewers on the other node — no earlier
//! than the deadline by Redis's clock, however far ahead that node's clock is.

use crate::common;

use anyhow::Result;
use common::{PATIENCE, TestServer, Viewer, drop_spec, far_script, redis_node, redis_options};
use dropwire_server::clock::{Clock, system_now_ms};
use dropwire_store::testing::RedisServer;
use futures_util::future::try_join_all;
use serde_json::json;

/// Units left of `sku` in a `stock` frame, if it lists it.
/// Reads `stock` frames until one says `sku` has `n` left (other frames keep coming, so
/// the wait as a whole is bounded too).
async fn until_left(v: &mut Viewer, sku: &str, n: u64) -> Result<()> {
    let wait = async {
        while common::left_of(&v.next_of("stock").await?, sku) != Some(n) {}
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .map_err(|_| anyhow::anyhow!("no stock frame with {n} {sku} left"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_revealed_after_a_claim_gets_its_stock_out_on_every_node() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = RedisServer::start();
    let nodes = [
        redis_node(&redis, "a", Clock::System).await?,
        redis_node(&redis, "b", Clock::System).await?,
    ];
    let cues = json!([
        {"at_s": 0, "type": "intro", "title": "Welcome"},
        {"at_s": 3000, "type": "reveal", "sku": "mug", "title": "Mugs"},
        {"at_s": 3100, "type": "reveal", "sku": "jug", "title": "Jugs"},
        {"at_s": 3600, "type": "close"}
    ]);
    let id = nodes[0]
        .create(drop_spec("late-reveal", 3, 1, cues))
        .await?;
    let mut viewers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        viewers.push(n.watch_as(&id, &format!("v{i}")).await?);
    }
    nodes[0].start_and_reveal(&id).await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;
    assert_eq!(viewers[0].claim("mug", "r1").await?["ok"], true);
    try_join_all(viewers.iter_mut().map(|v| until_left(v, "mug", 2))).await?;

    // No claim changes with the second reveal, yet its stock must go out, on both nodes.
    nodes[1]
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 2}))
        .await?;
    for v in viewers.iter_mut() {
        let stock = loop {
            let frame = v.next_of("stock").await?;
            if common::left_of(&frame, "jug").is_some() {
                break frame;
            }
        };
        assert_eq!(
            stock["items"],
            json!([{"sku": "mug", "left": 2}, {"sku": "jug", "left": 5}])
        );
    }
    // And a viewer who joins now sees it in its snapshot.
    let (mut late, _) = nodes[1].join(&id, None, None).await?;
    let snapshot = late.next_of("snapshot").await?;
    assert_eq!(
        snapshot["drop"]["stock"],
        json!([{"sku": "mug", "left": 2}, {"sku": "jug", "left": 5}])
    );
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_swept_by_a_node_without_viewers_reaches_the_others() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = RedisServer::start();
    // Node B runs a minute ahead; its sweeper, and only its (A sweeps once an hour), expires
    // the hold. It starts before the drop exists and is never asked about it: it has no hub
    // for it.
    let ahead = Clock::Tokio {
        base: tokio::time::Instant::now(),
        base_ms: system_now_ms() + 60_000,
    };
    let b = redis_node(&redis, "b", ahead).await?;
    let mut opts = redis_options(&redis, "a", Clock::System).await?;
    opts.sweep_every = std::time::Duration::from_secs(3600);
    let a = TestServer::with(opts).await?;
    let mut spec = drop_spec("swept-elsewhere", 1, 1, far_script());
    spec["hold_s"] = json!(10);
    let id = a.create(spec).await?;
    let mut v = a.watch_as(&id, "ana").await?;
    a.start_and_reveal(&id).await?;
    v.cue("reveal").await?;
    let granted = v.claim("mug", "r1").await?;
    assert_eq!(granted["ok"], true, "{granted}");
    until_left(&mut v, "mug", 0).await?;

    // B's sweep expires the hold once Redis's clock reaches its deadline, not 60 s early as
    // B's own clock would have it.
    until_left(&mut v, "mug", 1).await?;
    let time = redis.cli(&["time"]);
    let mut parts = time.lines().map(|l| l.trim().parse::<u64>());
    let (Some(Ok(s)), Some(Ok(us))) = (parts.next(), parts.next()) else {
        anyhow::bail!("TIME answered {time:?}");
    };
    let deadline = granted["hold_until_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(
        s * 1000 + us / 1000 >= deadline,
        "expired before its deadline"
    );
    let (_, stats) = a.get(&format!("/api/v1/drops/{id}/stats")).await?;
    assert_eq!(stats["claims"]["expired"], 1);
    assert_eq!(stats["claims"]["held"], 0);
    let code = granted["code"].as_str().unwrap_or_default();
    let (status, body) = a
        .post(&format!("/api/v1/claims/{code}/redeem"), json!({}))
        .await?;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("not_held")));
    b.stop().await?;
    a.stop().await
}
