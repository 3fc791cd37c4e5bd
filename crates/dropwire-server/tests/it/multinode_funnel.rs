//! The funnel across hub nodes: two nodes on one Redis sharing one PostgreSQL ledger. A
//! viewer who joins the waitlist through node A claims early through node B; the public is
//! refused on both; both nodes read one waitlist and one ledger.

use crate::common;

use anyhow::{Context, Result};
use common::{TestServer, redis_options};
use dropwire_funnel::Ledger;
use dropwire_funnel::conformance::PgServer;
use dropwire_server::clock::Clock;
use serde_json::json;

/// A hub node on `redis` with the shared ledger at `ledger_url`.
async fn node(
    redis: &dropwire_store::testing::RedisServer,
    name: &str,
    ledger_url: &str,
) -> Result<TestServer> {
    let mut opts = redis_options(redis, name, Clock::System).await?;
    opts.ledger = Some(Ledger::open(ledger_url).await?);
    TestServer::with(opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waitlist_gets_early_access_on_every_node() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = dropwire_store::testing::RedisServer::start();
    let pg = PgServer::start();
    let url = pg.create_database("funnel");
    let a = node(&redis, "a", &url).await?;
    let b = node(&redis, "b", &url).await?;
    let mut spec = common::drop_spec("two-nodes-early", 5, 1, common::far_script());
    spec["early_access_s"] = json!(3600);
    let drop = a.create(spec).await?;
    let member = a.mint("member").await?;
    let resp = a
        .http
        .post(format!("{}/api/v1/drops/{drop}/waitlist", a.base))
        .bearer_auth(&member)
        .json(&json!({"intent": {"items": ["mug"]}}))
        .send()
        .await?;
    assert_eq!(resp.status(), 201);
    let (mut on_b, _) = b.join(&drop, Some(&member), None).await?;
    let mut public_a = a.watch_as(&drop, "public-a").await?;
    let mut public_b = b.watch_as(&drop, "public-b").await?;
    a.start_and_reveal(&drop).await?;
    on_b.cue("reveal").await?;
    public_a.cue("reveal").await?;
    public_b.cue("reveal").await?;

    let granted = on_b.claim("mug", "m1").await?;
    assert_eq!(
        granted["ok"], true,
        "joined on A, claims early on B: {granted}"
    );
    for (viewer, rid) in [(&mut public_a, "p1"), (&mut public_b, "p2")] {
        let refused = viewer.claim("mug", rid).await?;
        assert_eq!(refused["reason"], "not_open", "{refused}");
        assert!(refused["opens_at_ms"].as_u64().is_some());
    }
    // One waitlist and one ledger, read from either node.
    let (_, list) = b.get(&format!("/api/v1/drops/{drop}/waitlist")).await?;
    assert_eq!(list["count"], 1);
    let code = granted["code"].as_str().context("code")?.to_owned();
    common::eventually("node B's claim reaches the shared ledger", || {
        let (a, drop, code) = (&a, &drop, &code);
        async move {
            let (_, facts) = a
                .get(&format!(
                    "/api/v1/ledger/facts?drop={drop}&kind=claim.granted"
                ))
                .await?;
            Ok(facts["facts"]
                .as_array()
                .is_some_and(|f| f.len() == 1 && f[0]["detail"]["code"] == code.as_str()))
        }
    })
    .await?;
    let (_, live) = a
        .get(&format!("/api/v1/ledger/facts?drop={drop}&kind=drop.live"))
        .await?;
    assert_eq!(
        live["facts"].as_array().map(Vec::len),
        Some(1),
        "both nodes saw it go live, one fact"
    );
    a.stop().await?;
    b.stop().await
}
