//! The hub on RedisStore (one node): exact claims over real sockets, and a Redis outage
//! answered with `unavailable` claims and a 503 `/readyz`, recovered without a restart.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use common::{TestServer, claim_all, drop_spec, far_script};
use dropwire_server::Options;
use dropwire_store::testing::RedisServer;
use dropwire_store::{RedisBus, RedisStore, RedisStoreConfig};
use futures_util::future::try_join_all;
use serde_json::json;

async fn on_redis(redis: &RedisServer) -> Result<TestServer> {
    let store = RedisStore::connect(RedisStoreConfig::new(redis.url())).await?;
    let bus = RedisBus::open(&store, "only".into()).await?;
    let mut opts = Options::new(Arc::new(store), common::ADMIN.into());
    opts.bus = Some(Arc::new(bus));
    TestServer::with(opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_viewers_race_for_forty_mugs_on_redis() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = RedisServer::start();
    let server = on_redis(&redis).await?;
    let id = server
        .create(drop_spec("redis-storm", 40, 1, far_script()))
        .await?;
    let mut viewers = Vec::new();
    for i in 0..200 {
        let token = server.mint(&format!("v{i}")).await?;
        let (mut v, _) = server.join(&id, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        viewers.push(v);
    }
    server.start_and_reveal(&id).await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;
    let results = claim_all(&mut viewers, "mug").await?;
    let codes: HashSet<&str> = results.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(codes.len(), 40);
    assert_eq!(
        results.iter().filter(|r| r["reason"] == "sold_out").count(),
        160
    );
    let (_, stats) = server.get(&format!("/api/v1/drops/{id}/stats")).await?;
    assert_eq!(stats["claims"]["held"], 40);
    assert_eq!(stats["stock"][0], json!({"sku": "mug", "left": 0}));
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_means_unavailable_and_503_then_recovers_by_itself() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let mut redis = RedisServer::start();
    let server = on_redis(&redis).await?;
    let id = server
        .create(drop_spec("redis-outage", 5, 1, far_script()))
        .await?;
    let token = server.mint("ana").await?;
    let (mut ana, _) = server.join(&id, Some(&token), None).await?;
    ana.next_of("snapshot").await?;
    server.start_and_reveal(&id).await?;
    ana.cue("reveal").await?;
    let ready = format!("{}/readyz", server.base);
    assert_eq!(server.http.get(&ready).send().await?.status(), 200);

    redis.kill9();
    assert_eq!(ana.claim("mug", "r1").await?["reason"], "unavailable");
    assert_eq!(server.http.get(&ready).send().await?.status(), 503);
    ana.send(json!({"type": "ping", "ts": 1})).await?;
    ana.next_of("pong").await?; // the viewer stays connected

    redis.restart();
    let mut answer = serde_json::Value::Null;
    let deadline = tokio::time::Instant::now() + common::EVENTUALLY;
    let mut i = 0;
    while tokio::time::Instant::now() < deadline {
        i += 1;
        answer = ana.claim("mug", &format!("again{i}")).await?;
        if answer["ok"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer["ok"], true, "{answer}");
    // Ready again once the bus has its subscription back too.
    common::eventually("/readyz says ready again", || async {
        Ok(server.http.get(&ready).send().await?.status() == 200)
    })
    .await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_in_time_is_unavailable_and_says_it_timed_out() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = RedisServer::start();
    let server = on_redis(&redis).await?;
    let id = server
        .create(drop_spec("redis-paused", 5, 1, far_script()))
        .await?;
    let path = format!("/api/v1/drops/{id}/claims");
    assert_eq!(server.get(&path).await?.0, 200);

    // Redis is up but holds every client's commands for a while.
    let mut admin = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .exec_async(&mut admin)
        .await?;
    let (status, body) = server.get(&path).await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let said = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("timed out") || said.contains("did not answer within"),
        "a timeout says so: {body}"
    );

    common::eventually("the claims answer again once Redis does", || async {
        Ok(server.get(&path).await?.0 == 200)
    })
    .await?;
    server.stop().await
}
