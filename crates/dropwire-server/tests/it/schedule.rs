//! Drops that start by themselves (`auto_start` at `starts_at`): once, at that moment (on
//! tokio's paused clock), never when the streamer acted first, late at start-up when no node
//! ran at the time (unless the slot is over), as a ledger fact like a manual start; on Redis,
//! and with two nodes on one Redis racing to start it (one start in the control log).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dropwire_core::{ControlAction, ControlEntry, DropId, DropRecord, DropSpec, StartsAt};
use dropwire_server::AppState;
use dropwire_server::clock::Clock;
use dropwire_store::testing::RedisServer;
use dropwire_store::{MemoryStore, MemoryStoreConfig, Store};
use serde_json::{Value, json};

const MINUTE: u64 = 60_000;

/// `dropwire_schedule_starts_total{outcome}` of one node.
fn starts(state: &AppState, outcome: &str) -> u64 {
    state
        .metrics
        .schedule_starts
        .with_label_values(&[outcome])
        .get()
}

/// A 10-minute drop starting at `starts_ms`, by itself when `auto`.
fn record(id: &str, starts_ms: u64, auto: bool, created_ms: u64) -> Result<DropRecord> {
    let mut spec: DropSpec = serde_json::from_value(common::drop_spec(
        id,
        5,
        1,
        json!([
            {"at_s": 0, "type": "intro"},
            {"at_s": 300, "type": "reveal", "sku": "mug"},
            {"at_s": 600, "type": "close"}
        ]),
    ))?;
    spec.script.duration_s = 600;
    spec.starts_at = Some(StartsAt(starts_ms));
    spec.auto_start = auto;
    spec.validate()?;
    Ok(DropRecord {
        id: DropId::parse(id)?,
        spec,
        obs_key: "k".into(),
        created_ms,
        log: vec![],
        recipe: None,
        maker: "default".into(),
    })
}

async fn log_of(store: &Arc<dyn Store>, id: &str) -> Result<Vec<ControlEntry>> {
    let record = store
        .drop_record(&DropId::parse(id)?)
        .await?
        .context("the drop")?;
    Ok(record.log)
}

fn actions(log: &[ControlEntry]) -> Vec<&'static str> {
    log.iter().map(|e| e.action.name()).collect()
}

/// Waits (on whichever clock runs) until the drop's control log has `n` entries.
async fn until_log_has(store: &Arc<dyn Store>, id: &str, n: usize) -> Result<Vec<ControlEntry>> {
    for _ in 0..20_000 {
        let log = log_of(store, id).await?;
        if log.len() >= n {
            return Ok(log);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the log of {id} never had {n} entries")
}

fn memory() -> Result<Arc<dyn Store>> {
    Ok(Arc::new(MemoryStore::open(MemoryStoreConfig {
        data_dir: None,
        fsync: false,
        ..MemoryStoreConfig::default()
    })?))
}

async fn paused_server(store: Arc<dyn Store>) -> Result<AppState> {
    let mut opts = dropwire_server::Options::new(store, common::ADMIN.into());
    opts.clock = Clock::tokio_anchored();
    Ok(AppState::start(opts).await?)
}

#[tokio::test(start_paused = true)]
async fn a_drop_starts_by_itself_once_at_its_start_unless_the_streamer_acted_first() -> Result<()> {
    let store = memory()?;
    let state = paused_server(Arc::clone(&store)).await?;
    let now = state.clock.now_ms();
    let at = now + 10 * MINUTE;
    for (id, auto) in [
        ("auto", true),
        ("by-hand", false),
        ("started-early", true),
        ("closed-early", true),
    ] {
        state.store.create_drop(record(id, at, auto, now)?).await?;
        state.hub(&DropId::parse(id)?).await?;
    }
    let hub = state.hub(&DropId::parse("auto")?).await?;
    let mut rx = hub.subscribe();
    // The streamer starts one early and pauses it; closes another before its start.
    let early = state.hub(&DropId::parse("started-early")?).await?;
    early.control(ControlAction::Start).await?;
    early.control(ControlAction::Pause).await?;
    let closed = state.hub(&DropId::parse("closed-early")?).await?;
    closed.control(ControlAction::Close).await?;

    // The clock runs to the start (paused: it jumps to the hub's wake-up).
    let live = loop {
        let frame: Value = serde_json::from_str(rx.recv().await?.text.as_str())?;
        if frame["type"] == "state" {
            break frame;
        }
    };
    assert_eq!(live["state"], "live", "{live}");
    assert_eq!(live["ts"], at, "started at its starts_at exactly");
    let log = log_of(&store, "auto").await?;
    assert_eq!(
        log,
        [ControlEntry {
            at_ms: at,
            action: ControlAction::Start
        }]
    );

    // An hour on (the script has ended): still one start; the others are as the
    // streamer left them.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(actions(&log_of(&store, "auto").await?), ["start"]);
    let (_, view) = hub.view_at(state.clock.now_ms());
    assert_eq!(view.state, dropwire_core::DropState::Closed);
    assert!(log_of(&store, "by-hand").await?.is_empty());
    assert_eq!(
        actions(&log_of(&store, "started-early").await?),
        ["start", "pause"]
    );
    assert_eq!(actions(&log_of(&store, "closed-early").await?), ["close"]);
    assert_eq!(starts(&state, "started"), 1);
    assert_eq!(starts(&state, "elsewhere") + starts(&state, "failed"), 0);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_node_started_after_the_start_catches_up_unless_the_slot_is_over() -> Result<()> {
    let store = memory()?;
    let now = Clock::tokio_anchored().now_ms();
    // Due while no node ran: 4 minutes late (of a 10-minute slot); 11 minutes late: over.
    store
        .create_drop(record("late", now - 4 * MINUTE, true, now - MINUTE * 60)?)
        .await?;
    store
        .create_drop(record(
            "too-late",
            now - 11 * MINUTE,
            true,
            now - MINUTE * 60,
        )?)
        .await?;
    let state = paused_server(Arc::clone(&store)).await?;
    let log = until_log_has(&store, "late", 1).await?;
    assert_eq!(actions(&log), ["start"]);
    assert!(
        log[0].at_ms >= now,
        "started at the node's start, not back-dated"
    );
    let hub = state.hub(&DropId::parse("late")?).await?;
    let (_, view) = hub.view_at(state.clock.now_ms());
    assert_eq!(view.state, dropwire_core::DropState::Live);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        log_of(&store, "too-late").await?.is_empty(),
        "left for the streamer"
    );
    assert_eq!(
        (starts(&state, "started"), starts(&state, "missed")),
        (1, 1)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_drop_whose_start_passed_while_the_hub_was_down_starts_when_it_is_back()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let now = dropwire_server::clock::system_now_ms();
    {
        // The hub's store, written while the hub was down: the journal keeps `auto_start`.
        let store = MemoryStore::open(MemoryStoreConfig {
            data_dir: Some(dir.path().to_owned()),
            fsync: true,
            ..MemoryStoreConfig::default()
        })?;
        store
            .create_drop(record(
                "back-late",
                now - 2 * MINUTE,
                true,
                now - 5 * MINUTE,
            )?)
            .await?;
    }
    let server = common::TestServer::on_dir(dir.path()).await?;
    let log = until_log_has(&server.store(), "back-late", 1).await?;
    assert_eq!(actions(&log), ["start"]);
    let (_, drop) = server.get("/api/v1/drops/back-late").await?;
    assert_eq!(
        (drop["state"].as_str(), drop["auto_start"].as_bool()),
        (Some("live"), Some(true))
    );
    server.stop().await?;

    // Back again: the start is in the journal; nothing starts twice.
    let server = common::TestServer::on_dir(dir.path()).await?;
    assert_eq!(
        actions(&log_of(&server.store(), "back-late").await?),
        ["start"]
    );
    assert_eq!(starts(&server.state, "started"), 0);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_on_schedule_is_a_ledger_fact_like_a_manual_start() -> Result<()> {
    let server = common::TestServer::start().await?;
    let now = server.state.clock.now_ms();
    let starts = StartsAt(now + 1500).to_rfc3339();
    let mut spec = common::drop_spec("ledgered", 5, 1, common::far_script());
    spec["starts_at"] = json!(starts);
    spec["auto_start"] = json!(true);
    let created = server.ok("/api/v1/drops", spec).await?;
    assert_eq!(created["auto_start"], true);
    assert_eq!(created["state"], "scheduled");
    let facts = |kind: &'static str| {
        let server = &server;
        async move {
            let (_, body) = server
                .get(&format!("/api/v1/ledger/facts?drop=ledgered&kind={kind}"))
                .await?;
            Ok::<_, anyhow::Error>(body["facts"].as_array().cloned().unwrap_or_default())
        }
    };
    common::eventually("the drop went live by itself", || async {
        Ok(facts("drop.live").await?.len() == 1)
    })
    .await?;
    let (_, drop) = server.get("/api/v1/drops/ledgered").await?;
    assert_eq!(drop["state"], "live");
    let live = &facts("drop.live").await?[0];
    assert_eq!(live["at_ms"], drop["started_ms"]);
    assert_eq!(
        actions(&log_of(&server.store(), "ledgered").await?),
        ["start"]
    );

    // `auto_start` needs a start to keep.
    let mut bad = common::drop_spec("no-start", 5, 1, common::far_script());
    bad["auto_start"] = json!(true);
    let (status, body) = server.post("/api/v1/drops", bad).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "auto_start");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_a_late_node_catches_up_and_two_nodes_start_a_drop_once() -> Result<()> {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start();
    let options = |name: &'static str| {
        let redis = &redis;
        async move {
            let mut opts = common::redis_options(redis, name, Clock::System).await?;
            opts.schedule_scan_every = Duration::from_millis(200);
            Ok::<_, anyhow::Error>(opts)
        }
    };
    // Written while no node runs: its start passed a minute ago.
    let store: Arc<dyn Store> = options("writer").await?.store;
    let now = dropwire_server::clock::system_now_ms();
    store
        .create_drop(record("missed-start", now - MINUTE, true, now - MINUTE)?)
        .await?;
    let a = common::TestServer::with(options("a").await?).await?;
    let log = until_log_has(&store, "missed-start", 1).await?;
    assert_eq!(actions(&log), ["start"]);
    assert!(log[0].at_ms >= now);

    // Two nodes, each with a viewer (so each has the drop's hub): both wake at the start.
    let b = common::TestServer::with(options("b").await?).await?;
    let now = dropwire_server::clock::system_now_ms();
    let mut spec = common::drop_spec("raced", 5, 1, common::far_script());
    spec["starts_at"] = json!(StartsAt(now + 2000).to_rfc3339());
    spec["auto_start"] = json!(true);
    let id = a.create(spec).await?;
    let (mut on_a, _) = a.join(&id, None, None).await?;
    let (mut on_b, _) = b.join(&id, None, None).await?;
    on_a.state("live").await?;
    on_b.state("live").await?;
    // A drop no running node made (its maker went away): found by the scan, started once.
    let now = dropwire_server::clock::system_now_ms();
    store
        .create_drop(record("orphan", now + 1500, true, now)?)
        .await?;
    let orphan = until_log_has(&store, "orphan", 1).await?;

    // One start each, whoever won; every viewer heard the drop go live once.
    assert_eq!(actions(&log_of(&store, "raced").await?), ["start"]);
    assert_eq!(actions(&orphan), ["start"]);
    common::eventually("the orphan's start counted", || async {
        Ok(starts(&a.state, "started") + starts(&b.state, "started") == 3)
    })
    .await?;
    assert_eq!(
        starts(&a.state, "failed") + starts(&b.state, "failed"),
        0,
        "three drops, three starts kept, one node each"
    );
    for v in [&on_a, &on_b] {
        let lives = v
            .seen
            .iter()
            .filter(|f| f["type"] == "state" && f["state"] == "live")
            .count();
        assert_eq!(lives, 1);
    }
    a.stop().await?;
    b.stop().await
}
