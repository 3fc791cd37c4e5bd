//! Several hub nodes on one Redis (started by the test on a free port): claims stay exact
//! across nodes, every viewer on every node sees one gapless `seq` order with each cue
//! once, and viewers of a node killed with SIGKILL resume on another with `since`.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use common::{ADMIN, Spawned, TestServer, Viewer, claim_all, drop_spec, far_script, tally};
use dropwire_server::Options;
use dropwire_server::clock::Clock;
use dropwire_store::testing::RedisServer;
use dropwire_store::{RedisBus, RedisStore, RedisStoreConfig};
use futures_util::future::{join_all, try_join_all};
use serde_json::{Value, json};

/// One hub node on `redis`, in this process, on the system clock.
async fn node(redis: &RedisServer, name: &str) -> Result<TestServer> {
    common::redis_node(redis, name, Clock::System).await
}

/// What a viewer saw that every viewer must see alike: cues, state changes and stock, by seq.
pub(crate) fn story(v: &Viewer) -> Vec<(u64, String)> {
    v.seen
        .iter()
        .filter(|f| matches!(f["type"].as_str(), Some("cue" | "state" | "stock")))
        .map(|f| {
            let what = match f["type"].as_str() {
                Some("cue") => format!("cue {}", f["cue"]["type"]),
                Some("state") => format!("state {}", f["state"]),
                _ => format!("stock {}", f["items"]),
            };
            (f["seq"].as_u64().unwrap_or(0), what)
        })
        .collect()
}

/// `viewers` viewers spread over `nodes` race for `stock` mugs: exactly the stock is granted
/// with distinct codes, and every viewer on every node saw one story — the same seqs, the
/// intro and the reveal once each, the same stock counts.
pub(crate) async fn race_and_compare_stories(
    nodes: &[TestServer],
    id: &str,
    viewers: usize,
    stock: usize,
) -> Result<()> {
    let mut joined = Vec::new();
    for i in 0..viewers {
        let token = nodes[0].mint(&format!("{id}-v{i}")).await?;
        let (mut v, _) = nodes[i % nodes.len()].join(id, Some(&token), None).await?;
        v.next_of("snapshot").await?;
        joined.push(v);
    }
    nodes[1 % nodes.len()].start_and_reveal(id).await?;
    try_join_all(joined.iter_mut().map(|v| v.cue("reveal"))).await?;

    let results = claim_all(&mut joined, "mug").await?;
    let (granted, codes, sold_out, _) = tally(&results);
    assert_eq!(
        (granted, codes.len(), sold_out),
        (stock, stock, viewers - stock)
    );
    try_join_all(joined.iter_mut().map(|v| common::until_sold_out(v, "mug"))).await?;

    let first = story(&joined[0]);
    for (i, v) in joined.iter().enumerate() {
        assert_eq!(story(v), first, "viewer {i} on node {}", i % nodes.len());
    }
    let cues: Vec<&str> = first
        .iter()
        .filter(|(_, w)| w.starts_with("cue"))
        .map(|(_, w)| w.as_str())
        .collect();
    assert_eq!(cues, ["cue \"intro\"", "cue \"reveal\""]);
    assert!(first.iter().all(|(seq, _)| *seq > 0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_six_hundred_viewers_fifty_mugs() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let nodes = [
        node(&redis, "a").await?,
        node(&redis, "b").await?,
        node(&redis, "c").await?,
    ];
    let id = nodes[0]
        .create(drop_spec("three-nodes", 50, 1, far_script()))
        .await?;
    race_and_compare_stories(&nodes, &id, 600, 50).await?;
    for n in &nodes {
        let (_, stats) = n.get(&format!("/api/v1/drops/{id}/stats")).await?;
        assert_eq!(stats["claims"]["held"], 50);
        assert_eq!(stats["stock"][0], json!({"sku": "mug", "left": 0}));
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cue_fired_on_one_node_reaches_the_others_once() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let nodes = [
        node(&redis, "a").await?,
        node(&redis, "b").await?,
        node(&redis, "c").await?,
    ];
    let cues = json!([
        {"at_s": 0, "type": "intro", "title": "Welcome"},
        {"at_s": 2, "type": "cta", "title": "fired by the clock on every node"},
        {"at_s": 3000, "type": "reveal", "sku": "mug", "title": "Batch 12"},
        {"at_s": 3600, "type": "close"}
    ]);
    let id = nodes[0].create(drop_spec("cue-once", 5, 1, cues)).await?;
    let mut viewers = Vec::new();
    for n in &nodes {
        for _ in 0..2 {
            let (mut v, _) = n.join(&id, None, None).await?;
            v.next_of("snapshot").await?;
            viewers.push(v);
        }
    }
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 2}))
        .await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;
    // The clock fires the cta on all three nodes; viewers get it once.
    try_join_all(viewers.iter_mut().map(|v| v.cue("cta"))).await?;
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/pause"), json!({}))
        .await?;
    try_join_all(viewers.iter_mut().map(|v| v.state("paused"))).await?;

    for (i, v) in viewers.iter().enumerate() {
        let mut count: HashMap<String, usize> = HashMap::new();
        for f in v.seen.iter().filter(|f| f["type"] == "cue") {
            *count.entry(f["cue"]["type"].to_string()).or_default() += 1;
        }
        let expected: HashMap<String, usize> =
            [("\"intro\"", 1), ("\"reveal\"", 1), ("\"cta\"", 1)]
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect();
        assert_eq!(count, expected, "viewer {i}");
        let states: Vec<&Value> = v
            .seen
            .iter()
            .filter(|f| f["type"] == "state")
            .map(|f| &f["state"])
            .collect();
        assert_eq!(states, [&json!("live"), &json!("paused")], "viewer {i}");
    }
    // Every node counts every node's viewers.
    for n in &nodes {
        common::eventually("viewers counted over all nodes", || async {
            let (_, stats) = n.get(&format!("/api/v1/drops/{id}/stats")).await?;
            Ok(stats["viewers"]["now"] == 6)
        })
        .await?;
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

/// A viewer's claim, answered or not (its node died first).
struct Asked {
    viewer: Viewer,
    token: String,
    rid: String,
    answer: Option<Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_storm_loses_no_viewer_and_no_claim() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir()?;
    let url = redis.url();
    let mut doomed = Spawned::serve(&[
        "--redis".as_ref(),
        url.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
    ])?;
    let survivor = node(&redis, "survivor").await?;
    let id = survivor
        .create(drop_spec("node-crash", 50, 1, far_script()))
        .await?;
    let doomed_ws = doomed.ws_base();
    let mut on_doomed = Vec::new();
    let mut on_survivor = Vec::new();
    for i in 0..200 {
        let token = survivor.mint(&format!("v{i}")).await?;
        let mut v = if i % 2 == 0 {
            Viewer::open(&doomed_ws, &id).await?
        } else {
            survivor.connect(&id).await?
        };
        v.send(json!({"type": "hello", "token": token})).await?;
        v.next_of("snapshot").await?;
        let asked = Asked {
            viewer: v,
            token,
            rid: format!("r{i}"),
            answer: None,
        };
        if i % 2 == 0 {
            on_doomed.push(asked);
        } else {
            on_survivor.push(asked);
        }
    }
    survivor.start_and_reveal(&id).await?;
    for a in on_doomed.iter_mut().chain(on_survivor.iter_mut()) {
        a.viewer.cue("reveal").await?;
    }

    // Everyone claims; the doomed node dies once a few of its viewers have their answer.
    let (told_tx, mut told_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let storm = on_doomed.into_iter().map(|mut a| {
        let told = told_tx.clone();
        async move {
            let ask = json!({"type": "claim", "sku": "mug", "rid": a.rid});
            if a.viewer.send(ask).await.is_ok() {
                a.answer = a.viewer.next_of("claim_result").await.ok();
                let _ = told.send(());
            }
            a
        }
    });
    let storm = tokio::spawn(join_all(storm));
    drop(told_tx);
    for _ in 0..10 {
        told_rx.recv().await.context("no claim was answered")?;
    }
    doomed.kill9()?;
    let mut on_doomed = storm.await?;
    let survivors = try_join_all(on_survivor.iter_mut().map(|a| async move {
        let answer = a.viewer.claim("mug", &a.rid).await?;
        a.answer = Some(answer);
        Ok::<_, anyhow::Error>(())
    }));
    survivors.await?;

    // The doomed node's viewers come back on the survivor with `since` and ask again with
    // the same rid: an answer given before the crash stands, an unanswered one is answered.
    for a in on_doomed.iter_mut() {
        let since = a.viewer.last_seq.context("a seq before the crash")?;
        let mut v = survivor.connect(&id).await?;
        v.seen = std::mem::take(&mut a.viewer.seen);
        v.last_seq = Some(since);
        v.send(json!({"type": "hello", "token": a.token, "since": since}))
            .await?;
        v.next_of("welcome").await?;
        let again = v.claim("mug", &a.rid).await?;
        if let Some(before) = &a.answer {
            assert_eq!(
                &again, before,
                "the same rid gets the same answer on another node"
            );
        }
        a.answer = Some(again);
        a.viewer = v;
    }
    // Nothing missed: a cue fired now reaches every resumed viewer right after what it had,
    // without a snapshot (the harness fails on any gap in seq).
    survivor
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 2}))
        .await?;
    for a in on_doomed.iter_mut() {
        loop {
            let f = a.viewer.next().await?;
            if f["type"] == "snapshot" {
                bail!("a resumed viewer got a snapshot instead of what it missed");
            }
            if f["type"] == "cue" && f["cue"]["type"] == "close" {
                break;
            }
        }
    }

    let all: Vec<&Value> = on_doomed
        .iter()
        .chain(on_survivor.iter())
        .filter_map(|a| a.answer.as_ref())
        .collect();
    assert_eq!(all.len(), 200, "every viewer has an answer");
    let codes: HashSet<&str> = all.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(
        codes.len(),
        50,
        "exactly the stock was granted, each code once"
    );
    assert_eq!(
        all.iter().filter(|r| r["reason"] == "sold_out").count(),
        150
    );
    let (_, stats) = survivor.get(&format!("/api/v1/drops/{id}/stats")).await?;
    assert_eq!(stats["claims"]["held"], 50);
    assert_eq!(stats["stock"][0], json!({"sku": "mug", "left": 0}));
    survivor.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_ride_out_a_redis_outage_together() -> Result<()> {
    let _heavy = common::heavy().await;
    let mut redis = RedisServer::start();
    let nodes = [node(&redis, "a").await?, node(&redis, "b").await?];
    let id = nodes[0]
        .create(drop_spec("outage-two", 5, 1, far_script()))
        .await?;
    let mut viewers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        viewers.push(n.watch_as(&id, &format!("v{i}")).await?);
    }
    nodes[0].start_and_reveal(&id).await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;

    redis.kill9();
    for (n, v) in nodes.iter().zip(viewers.iter_mut()) {
        assert_eq!(v.claim("mug", "during").await?["reason"], "unavailable");
        let ready = n.http.get(format!("{}/readyz", n.base)).send().await?;
        assert_eq!(ready.status(), 503);
        v.send(json!({"type": "ping", "ts": 1})).await?;
        v.next_of("pong").await?; // still connected
    }
    let (status, body) = nodes[1]
        .post(&format!("/api/v1/drops/{id}/pause"), json!({}))
        .await?;
    assert_eq!(status, 503, "{body}");

    redis.restart();
    // Once Redis is back, a control action on node B reaches both nodes' viewers, in one
    // gapless order (the harness checks every seq), and claims work on both nodes. A pause
    // whose answer was lost may still have gone through: the drop's state decides.
    common::eventually("the pause goes through once Redis is back", || async {
        let (status, body) = nodes[1]
            .post(&format!("/api/v1/drops/{id}/pause"), json!({}))
            .await?;
        Ok(status == 200
            || (status == 409
                && body["error"]["message"].as_str() == Some("cannot pause a drop that is paused")))
    })
    .await?;
    try_join_all(viewers.iter_mut().map(|v| v.state("paused"))).await?;
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/resume"), json!({}))
        .await?;
    try_join_all(viewers.iter_mut().map(|v| v.state("live"))).await?;
    let mut granted = 0;
    for (i, v) in viewers.iter_mut().enumerate() {
        let answer = v.claim("mug", &format!("after{i}")).await?;
        assert_eq!(answer["ok"], true, "{answer}");
        granted += 1;
    }
    assert_eq!(granted, 2);
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

/// A control action is checked against the log in Redis, not against a node's own copy: a
/// node that has not heard of a pause made elsewhere (here written to the store behind the
/// bus's back, so no node is told) resumes the drop instead of answering "it is live".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_pause_still_resumes() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let nodes = [node(&redis, "a").await?, node(&redis, "b").await?];
    let id = nodes[0]
        .create(drop_spec("missed-pause", 5, 1, far_script()))
        .await?;
    nodes[0].start_and_reveal(&id).await?;
    let drop_id = dropwire_core::DropId::parse(&id)?;
    let store = nodes[1].store();
    let log = store.drop_record(&drop_id).await?.context("the drop")?.log;
    let at_ms = log.last().context("a log")?.at_ms + 1;
    let pause = dropwire_core::ControlEntry {
        at_ms,
        action: dropwire_core::ControlAction::Pause,
    };
    store.append_control(&drop_id, log.len(), pause).await?;

    let resumed = nodes[0]
        .ok(&format!("/api/v1/drops/{id}/resume"), json!({}))
        .await?;
    assert_eq!(resumed["state"], "live");
    // And a refusal stands when the store's log agrees: the drop is live now.
    let (status, body) = nodes[1]
        .post(&format!("/api/v1/drops/{id}/resume"), json!({}))
        .await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("wrong_state"))
    );
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

/// Runs `redis-cli` against the test's Redis.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("redis-cli")
        .arg("-u")
        .arg(redis.url())
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_broadcasts_never_gets_a_seq_reused() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let nodes = [node(&redis, "a").await?, node(&redis, "b").await?];
    let id = nodes[0]
        .create(drop_spec("rollback", 5, 1, far_script()))
        .await?;
    let mut viewers = Vec::new();
    for n in &nodes {
        let (mut v, _) = n.join(&id, None, None).await?;
        v.next_of("snapshot").await?;
        viewers.push(v);
    }
    nodes[0].start_and_reveal(&id).await?;
    try_join_all(viewers.iter_mut().map(|v| v.cue("reveal"))).await?;
    let before = viewers[0].last_seq.context("a seq")?;

    // As if Redis came back from an old snapshot: the numbering and the stream are behind
    // what the nodes delivered, and every subscription was cut.
    redis_cli(&redis, &["SET", &format!("dw:{{drop:{id}}}:seq"), "1"])?;
    redis_cli(&redis, &["DEL", &format!("dw:{{drop:{id}}}:bus")])?;
    redis_cli(&redis, &["CLIENT", "KILL", "TYPE", "pubsub"])?;
    common::eventually(
        "the nodes raise the numbering after reconnecting",
        || async {
            let seq = redis_cli(&redis, &["GET", &format!("dw:{{drop:{id}}}:seq")])?;
            Ok(seq.parse::<u64>().is_ok_and(|s| s >= before))
        },
    )
    .await?;
    nodes[1]
        .ok(&format!("/api/v1/drops/{id}/pause"), json!({}))
        .await?;
    // Gapless and increasing on both nodes (the harness fails on any other seq).
    try_join_all(viewers.iter_mut().map(|v| v.state("paused"))).await?;
    for v in &viewers {
        assert!(v.last_seq.context("a seq")? > before);
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_a_redis_cluster_tell_one_story() -> Result<()> {
    let _heavy = common::heavy().await;
    let cluster = dropwire_store::testing::RedisCluster::start();
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let store = RedisStore::connect(RedisStoreConfig::cluster(&cluster.urls())).await?;
        let bus = RedisBus::open(&store, name.into()).await?;
        let mut opts = Options::new(Arc::new(store), ADMIN.into());
        opts.bus = Some(Arc::new(bus));
        nodes.push(TestServer::with(opts).await?);
    }
    // A few drops, so their channels land on different shards.
    for d in 0..3 {
        let id = nodes[0]
            .create(drop_spec(&format!("cluster-{d}"), 20, 1, far_script()))
            .await?;
        race_and_compare_stories(&nodes, &id, 60, 20).await?;
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}
