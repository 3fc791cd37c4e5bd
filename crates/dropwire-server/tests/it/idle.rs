//! What a node keeps and does for drops that are over: a closed drop's hub is let go once
//! its viewers have left and its grace is over, and comes back on the next request; on
//! Redis it leaves the bus, and the drop's keys expire after the retention once it is
//! closed and settled; a cue the bus will not take is given up after the publish patience
//! and counted.

use std::time::Duration;

use anyhow::{Context, Result};
use dropwire_core::DropId;
use dropwire_server::clock::Clock;
use dropwire_store::testing::RedisServer;
use serde_json::json;

use crate::common::{self, TestServer, drop_spec, eventually, far_script, redis_options};

/// Hubs idle for a second are let go; the sweeper (which evicts every 5 sweeps) runs every
/// 100 ms.
fn quick(opts: &mut dropwire_server::Options) {
    opts.hub_idle_grace = Duration::from_secs(1);
    opts.sweep_every = Duration::from_millis(100);
}

fn id(s: &str) -> Result<DropId> {
    Ok(DropId::parse(s)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_drops_hub_is_let_go_once_idle_and_comes_back_on_demand() -> Result<()> {
    let mut opts = common::memory_options()?;
    quick(&mut opts);
    let server = TestServer::with_ledger(opts).await?;
    let hubs = &server.state.hubs;
    let open = server
        .create(drop_spec("stays-open", 5, 1, far_script()))
        .await?;
    let watched = server
        .create(drop_spec("watched", 5, 1, far_script()))
        .await?;
    let unwatched = server
        .create(drop_spec("unwatched", 5, 1, far_script()))
        .await?;
    server.start_and_reveal(&open).await?;
    server.start_and_reveal(&watched).await?;
    let mut v = server.watch_as(&watched, "ana").await?;
    server
        .ok(&format!("/api/v1/drops/{watched}/close"), json!({}))
        .await?;
    v.state("closed").await?;
    // Closed after `watched`: its grace ends later.
    server
        .ok(&format!("/api/v1/drops/{unwatched}/close"), json!({}))
        .await?;

    eventually("the unwatched closed drop's hub let go", || async {
        Ok(!hubs.is_loaded(&id(&unwatched)?))
    })
    .await?;
    assert!(hubs.is_loaded(&id(&watched)?), "a viewer is still there");
    assert!(hubs.is_loaded(&id(&open)?), "an open drop's hub stays");

    v.ws.close(None).await?;
    eventually(
        "the watched drop's hub let go once its viewer left",
        || async { Ok(!hubs.is_loaded(&id(&watched)?)) },
    )
    .await?;
    assert!(hubs.is_loaded(&id(&open)?));
    assert_eq!(hubs.len(), 1);

    // A later request or viewer gets the closed drop as before.
    let (status, snap) = server.get(&format!("/api/v1/drops/{watched}")).await?;
    assert_eq!((status, &snap["state"]), (200, &json!("closed")), "{snap}");
    assert!(hubs.is_loaded(&id(&watched)?));
    let (status, stats) = server
        .get(&format!("/api/v1/drops/{unwatched}/stats"))
        .await?;
    assert_eq!(status, 200, "{stats}");
    let (mut again, _) = server.join(&watched, None, None).await?;
    let snapshot = again.next_of("snapshot").await?;
    assert_eq!(snapshot["drop"]["state"], "closed", "{snapshot}");
    server.stop().await
}

/// Every key of a drop in Redis, with the code index entries of `codes`.
fn keys_of(redis: &RedisServer, drop: &str, codes: &[&str]) -> Vec<String> {
    let listed = redis.cli(&["--scan", "--pattern", &format!("dw:{{drop:{drop}}}:*")]);
    let mut keys: Vec<String> = listed.lines().map(str::to_owned).collect();
    keys.extend(codes.iter().map(|c| format!("dw:code:{c}")));
    keys
}

fn subscribers(redis: &RedisServer, drop: &str) -> String {
    let channel = format!("dw:{{drop:{drop}}}:bus");
    let out = redis.cli(&["pubsub", "shardnumsub", &channel]);
    out.lines().nth(1).unwrap_or("").trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_an_idle_hub_leaves_the_bus_and_a_settled_drop_expires() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let mut opts = redis_options(&redis, "idle", Clock::System).await?;
    quick(&mut opts);
    let server = TestServer::with(opts).await?;
    let (open, done) = (
        server.create(drop_spec("open", 5, 1, far_script())).await?,
        server.create(drop_spec("done", 5, 1, far_script())).await?,
    );
    let (mut codes, mut connected) = (Vec::new(), Vec::new());
    for drop in [&open, &done] {
        server.start_and_reveal(drop).await?;
        let mut v = server.watch_as(drop, "ana").await?;
        let granted = v.claim("mug", "r1").await?;
        assert_eq!(granted["ok"], true, "{granted}");
        codes.push(granted["code"].as_str().context("code")?.to_owned());
        if drop == &done {
            server
                .ok(&format!("/api/v1/drops/{done}/close"), json!({}))
                .await?;
            v.state("closed").await?;
            let code = &codes[1];
            server
                .ok(&format!("/api/v1/claims/{code}/redeem"), json!({}))
                .await?;
            v.ws.close(None).await?;
        } else {
            connected.push(v);
        }
    }
    let hubs = &server.state.hubs;
    eventually("the closed drop's hub let go", || async {
        Ok(!hubs.is_loaded(&id(&done)?))
    })
    .await?;
    assert!(hubs.is_loaded(&id(&open)?));
    eventually("its bus subscription ended", || async {
        Ok(subscribers(&redis, &done) == "0")
    })
    .await?;
    assert_eq!(subscribers(&redis, &open), "1");
    let nodes = format!("dw:{{drop:{done}}}:nodes");
    assert_eq!(
        redis.cli(&["hlen", &nodes]),
        "0",
        "it left the viewer count"
    );
    drop(connected);

    // Closed, its hold redeemed, its hub gone (nothing writes to it any more): every key
    // expires within the retention (90 days by default); the open drop keeps its keys.
    let bound: i64 = 90 * 86_400_000;
    let keys = keys_of(&redis, &done, &[codes[1].as_str()]);
    assert!(keys.len() >= 15, "{keys:?}");
    for key in &keys {
        let left: i64 = redis.cli(&["pttl", key]).parse()?;
        assert!(left > 0 && left <= bound, "{key}: {left}");
    }
    for key in keys_of(&redis, &open, &[codes[0].as_str()]) {
        assert_eq!(redis.cli(&["pttl", &key]), "-1", "{key}");
    }

    // Asked again, the drop is served and the hub subscribes again.
    let (status, snap) = server.get(&format!("/api/v1/drops/{done}")).await?;
    assert_eq!((status, &snap["state"]), (200, &json!("closed")), "{snap}");
    assert_eq!(subscribers(&redis, &done), "1");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cue_redis_will_not_take_is_given_up_and_counted() -> Result<()> {
    let _heavy = common::heavy().await;
    let mut redis = RedisServer::start();
    let mut opts = redis_options(&redis, "patient", Clock::System).await?;
    opts.publish_patience = Duration::from_secs(1);
    let server = TestServer::with(opts).await?;
    let cues = json!([
        {"at_s": 0, "type": "intro", "title": "Welcome"},
        {"at_s": 10, "type": "cta", "title": "Last call"},
        {"at_s": 3600, "type": "close"}
    ]);
    let drop = server.create(drop_spec("unheard", 5, 1, cues)).await?;
    let mut v = server.watch_as(&drop, "ana").await?;
    server
        .ok(&format!("/api/v1/drops/{drop}/start"), json!({}))
        .await?;
    v.cue("intro").await?;
    let failures = || async {
        let metrics = server
            .http
            .get(format!("{}/metrics", server.base))
            .send()
            .await?
            .text()
            .await?;
        Ok::<_, anyhow::Error>(
            metrics
                .lines()
                .find(|l| l.starts_with("dropwire_publish_failures_total{kind=\"cue\"}"))
                .map(str::to_owned),
        )
    };
    assert_eq!(
        failures().await?.as_deref(),
        Some("dropwire_publish_failures_total{kind=\"cue\"} 0")
    );
    // Redis goes away before the cta is due (10 s after the start) and stays away.
    redis.kill9();
    eventually("the cta given up and counted", || async {
        Ok(failures().await?.as_deref() == Some("dropwire_publish_failures_total{kind=\"cue\"} 1"))
    })
    .await?;
    // Redis back: the hub goes on (the next cue, fired now, reaches the viewer).
    redis.restart();
    let fire = || async {
        let (status, body) = server
            .post(&format!("/api/v1/drops/{drop}/fire"), json!({"cue": 2}))
            .await?;
        // 409: an earlier try was taken though its answer was lost.
        Ok(status == 200 || (status == 409 && body["error"]["code"] == "already_fired"))
    };
    eventually("a fire accepted once Redis is back", fire).await?;
    v.cue("close").await?;
    server.stop().await
}
