//! Several hub nodes in this one process, sharing one memory store and one in-memory bus
//! (`dropwire_store::MemoryBus`): the multi-node hub without Redis. The same stories as
//! on Redis (`multinode`): one `seq` order on every node, each cue once, claims exact,
//! viewers summed over the nodes.

use crate::common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use common::{ADMIN, TestServer, Viewer, drop_spec, far_script};
use dropwire_core::{ControlAction, ControlEntry, DropId, FireTarget};
use dropwire_server::Options;
use dropwire_store::{MemoryBus, MemoryStore, MemoryStoreConfig, Store};
use futures_util::future::try_join_all;
use serde_json::json;

use crate::multinode::{race_and_compare_stories, story};

/// Reads until a stock broadcast with `left` mugs (perhaps seen already).
async fn until_left(v: &mut Viewer, left: u64) -> Result<()> {
    let shows = |f: &serde_json::Value| f["type"] == "stock" && f["items"][0]["left"] == left;
    while !v.seen.iter().any(shows) {
        v.next().await?;
    }
    Ok(())
}

/// `n` hub nodes over one memory store, each with its end of one in-memory bus.
async fn nodes(n: usize) -> Result<Vec<TestServer>> {
    Ok(nodes_and_store(n).await?.0)
}

/// As [`nodes`], with the store they share (to act as a node that died halfway).
async fn nodes_and_store(n: usize) -> Result<(Vec<TestServer>, Arc<dyn Store>)> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::open(MemoryStoreConfig {
        data_dir: None,
        fsync: false,
        ..MemoryStoreConfig::default()
    })?);
    let bus = MemoryBus::new(Arc::clone(&store), "node-0");
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut opts = Options::new(Arc::clone(&store), ADMIN.into());
        opts.bus = Some(Arc::new(bus.join(format!("node-{i}"))));
        nodes.push(TestServer::with(opts).await?);
    }
    Ok((nodes, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_in_one_process_tell_one_story() -> Result<()> {
    let nodes = nodes(2).await?;
    let id = nodes[0]
        .create(drop_spec("in-process", 10, 1, far_script()))
        .await?;
    // The reveal is fired on the second node, the claims spread over both.
    race_and_compare_stories(&nodes, &id, 40, 10).await?;
    for n in &nodes {
        let (_, stats) = n.get(&format!("/api/v1/drops/{id}/stats")).await?;
        assert_eq!(stats["claims"]["held"], 10);
        assert_eq!(stats["stock"][0], json!({"sku": "mug", "left": 0}));
    }
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cue_and_a_claim_on_one_node_reach_the_other_in_one_order() -> Result<()> {
    let nodes = nodes(2).await?;
    let cues = json!([
        {"at_s": 0, "type": "intro", "title": "Welcome"},
        {"at_s": 3000, "type": "reveal", "sku": "mug", "title": "Batch 12"},
        {"at_s": 3600, "type": "close"}
    ]);
    let id = nodes[0]
        .create(drop_spec("cue-and-claim", 3, 1, cues))
        .await?;
    let mut ana = nodes[0].watch_as(&id, "ana").await?;
    let mut bo = nodes[1].watch_as(&id, "bo").await?;
    nodes[0].start_and_reveal(&id).await?;
    for v in [&mut ana, &mut bo] {
        v.cue("reveal").await?;
    }
    // Bo claims on node 1; Ana, on node 0, sees the stock go down in the same order.
    bo.send(json!({"type": "claim", "sku": "mug", "rid": "r1"}))
        .await?;
    let result = bo.next_of("claim_result").await?;
    assert_eq!(result["ok"], true, "{result}");
    for v in [&mut ana, &mut bo] {
        until_left(v, 2).await?;
    }
    assert_eq!(story(&ana), story(&bo), "one order on both nodes");
    let cues: Vec<String> = story(&ana)
        .into_iter()
        .filter(|(_, what)| what.starts_with("cue"))
        .map(|(_, what)| what)
        .collect();
    assert_eq!(cues, ["cue \"intro\"", "cue \"reveal\""], "each cue once");
    // Each node counts both nodes' viewers.
    for n in &nodes {
        common::eventually("viewers counted over both nodes", || async {
            let (_, stats) = n.get(&format!("/api/v1/drops/{id}/stats")).await?;
            Ok(stats["viewers"]["now"] == 2 && stats["viewers"]["unique"] == 2)
        })
        .await?;
    }
    // A pause made on one node reaches the viewers of both.
    nodes[1]
        .ok(&format!("/api/v1/drops/{id}/pause"), json!({}))
        .await?;
    try_join_all([&mut ana, &mut bo].map(|v| v.state("paused"))).await?;
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}

/// A node logs a reveal in the store and dies before it tells the others or publishes the
/// cue (the topology test's kill at the reveal). The viewers on the surviving node are not
/// refused as `not_open`: their claim makes the node read the log again, and its periodic
/// look at the log publishes the reveal it never heard of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reveal_logged_by_a_node_that_died_before_telling_is_honoured() -> Result<()> {
    let (nodes, store) = nodes_and_store(2).await?;
    let cues = json!([
        {"at_s": 0, "type": "intro", "title": "Welcome"},
        {"at_s": 3000, "type": "reveal", "sku": "mug", "title": "Batch 12"},
        {"at_s": 3600, "type": "close"}
    ]);
    let id = nodes[0]
        .create(drop_spec("died-at-reveal", 3, 1, cues))
        .await?;
    let mut bo = nodes[1].watch_as(&id, "bo").await?;
    nodes[0]
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    bo.state("live").await?;
    // "Node 0" appends the reveal to the stored log, and nothing more.
    let drop_id = DropId::parse(&id)?;
    let log = store
        .drop_record(&drop_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no drop {id}"))?
        .log;
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let entry = ControlEntry {
        at_ms: log.last().map_or(now_ms, |e| e.at_ms.max(now_ms)),
        action: ControlAction::Fire {
            cue: FireTarget::Script(1),
        },
    };
    store.append_control(&drop_id, log.len(), entry).await?;
    let result = bo.claim("mug", "r1").await?;
    assert_eq!(
        result["ok"], true,
        "the logged reveal is honoured: {result}"
    );
    let revealed = |v: &Viewer| {
        v.seen
            .iter()
            .any(|f| f["type"] == "cue" && f["cue"]["type"] == "reveal")
    };
    if !revealed(&bo) {
        bo.cue("reveal").await?;
    }
    let reveals = bo
        .seen
        .iter()
        .filter(|f| f["type"] == "cue" && f["cue"]["type"] == "reveal")
        .count();
    assert_eq!(reveals, 1, "the reveal reaches the viewer once");
    for n in nodes {
        n.stop().await?;
    }
    Ok(())
}
