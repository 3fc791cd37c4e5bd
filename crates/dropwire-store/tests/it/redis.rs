//! RedisStore against a real redis-server this test starts on a free port: the shared
//! conformance suite, Redis going away and coming back, and SIGKILL of Redis mid-storm.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dropwire_core::timeline::{ControlAction, ControlEntry};
use dropwire_core::{ClaimOutcome, ClaimReason, DropId};
use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::testing::RedisServer;
use dropwire_store::{ClaimRequest, RedisStore, RedisStoreConfig, Store};

/// One server for the whole suite (each conformance test uses its own drop).
fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(RedisServer::start)
}

mod conformance {
    use super::*;
    // The suite runs on a virtual time (`T0`): deadlines are judged by the time it passes,
    // not by the Redis server's clock (`redis_clock` below tests that one).
    dropwire_store::conformance_tests!(async {
        let config = RedisStoreConfig {
            clock: dropwire_store::HoldClock::Caller,
            ..RedisStoreConfig::new(shared().url())
        };
        RedisStore::connect(config).await.expect("connect")
    });
}

/// The bus contract on Redis: two nodes' ends (each its own subscription connection).
mod bus_conformance {
    use dropwire_store::conformance::bus::BusNet;

    use super::*;

    dropwire_store::bus_conformance_tests!(async {
        let store = RedisStore::connect(RedisStoreConfig::new(shared().url()))
            .await
            .expect("connect");
        BusNet::on_redis(store).await
    });
}

/// `viewer` asks for a mug (rid `r`) at `now_ms`.
pub(super) fn req_at(drop: &DropId, viewer: &str, now_ms: u64) -> ClaimRequest {
    dropwire_store::conformance::req(drop, "mug", viewer, "r", now_ms)
}

fn req(drop: &DropId, viewer: &str) -> ClaimRequest {
    req_at(drop, viewer, 1)
}

/// Starts and closes a drop, both at `at_ms`.
pub(super) async fn close(store: &RedisStore, drop: &DropId, at_ms: u64) {
    for (n, action) in [ControlAction::Start, ControlAction::Close]
        .into_iter()
        .enumerate()
    {
        store
            .append_control(drop, n, ControlEntry { at_ms, action })
            .await
            .expect("control");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_means_unavailable_at_once_and_back_means_working() {
    let _heavy = dropwire_store::testing::heavy().await;
    let mut server = RedisServer::start();
    let store = RedisStore::connect(RedisStoreConfig::new(server.url()))
        .await
        .expect("connect");
    let id = fresh_id("outage");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    assert!(matches!(
        store.claim(req(&id, "ana")).await,
        Ok(ClaimOutcome::Granted(_))
    ));

    server.kill9();
    // Redis gone: the claim and the ping fail with `unavailable` instead of waiting for it
    // to come back (it does not, until after this). The guard only stops a hang; the time
    // taken is printed, not asserted (speed lives in benchmarks).
    let started = Instant::now();
    let gone = async {
        let err = store
            .claim(req(&id, "bo"))
            .await
            .expect_err("redis is gone");
        assert!(err.is_unavailable(), "{err}");
        let claim_failed = started.elapsed();
        assert!(store.ping().await.is_err());
        claim_failed
    };
    let claim_failed = tokio::time::timeout(Duration::from_secs(120), gone)
        .await
        .expect("a claim and a ping against a dead Redis answer instead of hanging");
    eprintln!(
        "redis away: a claim failed after {claim_failed:?}, a ping after {:?} more",
        started.elapsed() - claim_failed
    );

    server.restart();
    let mut back = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(outcome) = store.claim(req(&id, "bo")).await {
            back = Some(outcome);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(back, Some(ClaimOutcome::Granted(_))), "{back:?}");
    assert!(store.ping().await.is_ok());
    assert_eq!(
        store.claims(&id).await.expect("claims").len(),
        2,
        "ana's claim survived the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_of_redis_mid_storm_loses_no_acknowledged_claim() {
    let _heavy = dropwire_store::testing::heavy().await;
    const STOCK: u32 = 100_000;
    let mut server = RedisServer::start();
    let store = Arc::new(
        RedisStore::connect(RedisStoreConfig::new(server.url()))
            .await
            .expect("connect"),
    );
    let id = fresh_id("redis-crash");
    store
        .create_drop(record(&id, STOCK, 1, 900))
        .await
        .expect("create");
    // 32 claimers, each claiming for fresh viewers until Redis stops answering.
    let (told_tx, mut told_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let store = Arc::clone(&store);
            let id = id.clone();
            let told = told_tx.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    match store.claim(req(&id, &format!("v{t}-{i}"))).await {
                        Ok(ClaimOutcome::Granted(c)) => {
                            let _ = told.send(c.code);
                        }
                        Ok(other) => panic!("{other:?}"),
                        Err(e) => return e.is_unavailable(),
                    }
                }
                false
            })
        })
        .collect();
    drop(told_tx);
    let mut told = HashSet::new();
    while told.len() < 300 {
        match told_rx.recv().await {
            Some(code) => told.insert(code),
            None => break,
        };
    }
    server.kill9();
    for t in tasks {
        assert!(
            t.await.expect("task"),
            "every claimer ends on `unavailable`"
        );
    }
    while let Ok(code) = told_rx.try_recv() {
        told.insert(code);
    }
    server.restart();
    let fresh = RedisStore::connect(RedisStoreConfig::new(server.url()))
        .await
        .expect("reconnect");
    let listed: HashSet<_> = fresh
        .claims(&id)
        .await
        .expect("claims")
        .into_iter()
        .map(|c| c.code)
        .collect();
    let lost: Vec<_> = told.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged claims lost: {lost:?}");
    let f = fresh.figures(&id).await.expect("figures");
    assert_eq!(
        u64::from(f.stock[0].left) + f.held + f.redeemed,
        u64::from(STOCK),
        "stock accounting holds"
    );
    assert_eq!(f.held as usize, listed.len());
    assert!(listed.len() >= told.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_in_the_control_log_refuses_every_later_claim() {
    let store = RedisStore::connect(RedisStoreConfig::new(shared().url()))
        .await
        .expect("connect");
    let id = fresh_id("closed");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    close(&store, &id, 1).await;
    assert_eq!(
        store.claim(req(&id, "ana")).await.expect("claim"),
        ClaimOutcome::Refused(ClaimReason::Closed)
    );
    assert!(store.claims(&id).await.expect("claims").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_claim_is_acknowledged_only_once_a_replica_has_it() {
    let _heavy = dropwire_store::testing::heavy().await;
    let primary = RedisServer::start();
    let mut config = RedisStoreConfig::new(primary.url());
    config.wait_replicas = 1;
    // Long enough for a freshly synced replica to confirm on a busy machine.
    config.op_timeout = Duration::from_secs(1);
    let store = RedisStore::connect(config).await.expect("connect");
    let id = fresh_id("replicas");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");

    // No replica: granted on the primary, but not acknowledged.
    let err = store
        .claim(req(&id, "ana"))
        .await
        .expect_err("no replica confirms");
    assert!(err.is_unavailable(), "{err}");

    // Claims waiting for a replica hold only their own connection: the rest answers.
    let waiting = fresh_id("replicas-wait");
    store
        .create_drop(record(&waiting, 100, 1, 60))
        .await
        .expect("create");
    // Three callers keep claiming, so several batches (each a WAIT) are out at once.
    let claims: Vec<_> = (0..3)
        .map(|c| {
            let (store, waiting) = (store.clone(), waiting.clone());
            tokio::spawn(async move {
                for i in 0..2 {
                    // Stock enough for all: each is granted on the primary, none confirmed.
                    let claim = store.claim(req(&waiting, &format!("w{c}-{i}"))).await;
                    assert!(claim.is_err(), "no replica, no acknowledgement: {claim:?}");
                }
            })
        })
        .collect();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.ping().await.expect("ping while claims wait");
        store.figures(&id).await.expect("figures while claims wait");
    }
    for c in claims {
        c.await.expect("the waiting claims");
    }

    let port = primary.port.to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !replica
        .cli(&["info", "replication"])
        .contains("master_link_status:up")
    {
        assert!(Instant::now() < deadline, "the replica did not sync");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The same rid again: the same hold, now confirmed by the replica. A replica that has
    // just synced may take longer than one WAIT on a loaded machine: the same rid is asked
    // again until it is (it is the same hold every time, never a second one).
    let mut again = store.claim(req(&id, "ana")).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while again.as_ref().is_err_and(|e| e.is_unavailable()) && Instant::now() < deadline {
        again = store.claim(req(&id, "ana")).await;
    }
    let again = again.expect("acknowledged");
    let ClaimOutcome::Granted(claim) = again else {
        panic!("{again:?}")
    };
    let mut bo = store.claim(req(&id, "bo")).await;
    while bo.as_ref().is_err_and(|e| e.is_unavailable()) && Instant::now() < deadline {
        bo = store.claim(req(&id, "bo")).await;
    }
    assert!(matches!(bo, Ok(ClaimOutcome::Granted(_))), "{bo:?}");
    let on_replica = replica.cli(&[
        "hexists",
        &format!("dw:{{drop:{id}}}:claims"),
        claim.code.as_str(),
    ]);
    assert_eq!(on_replica, "1", "the replica has the acknowledged claim");
    assert_eq!(store.claims(&id).await.expect("claims").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_claims_at_once_than_the_batch_queue_holds_all_get_answers() {
    let _heavy = dropwire_store::testing::heavy().await;
    let store = RedisStore::connect(RedisStoreConfig::new(shared().url()))
        .await
        .expect("connect");
    let id = fresh_id("crowd");
    store
        .create_drop(record(&id, 50, 1, 60))
        .await
        .expect("create");
    // More callers than the batcher queues (4,096): the rest wait for room, none is refused.
    let asks = (0..6000).map(|i| {
        let store = store.clone();
        let req = req(&id, &format!("v{i}"));
        tokio::spawn(async move { store.claim(req).await })
    });
    let mut granted = 0;
    let mut sold_out = 0;
    for ask in asks.collect::<Vec<_>>() {
        match ask.await.expect("task") {
            Ok(ClaimOutcome::Granted(_)) => granted += 1,
            Ok(ClaimOutcome::Refused(dropwire_core::ClaimReason::SoldOut)) => sold_out += 1,
            other => panic!("every claim is decided, not {other:?}"),
        }
    }
    assert_eq!((granted, sold_out), (50, 5950));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_bus_took_a_drop_live_the_claim_script_checks_the_window() {
    use dropwire_store::{Bus, Mark, Published, RedisBus};
    let store = RedisStore::connect(RedisStoreConfig::new(shared().url()))
        .await
        .expect("connect");
    let bus = RedisBus::open(&store, "window-test".into())
        .await
        .expect("bus");
    let id = fresh_id("window");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    let claim = |viewer: &str| store.claim(req(&id, viewer));
    // Without the bus, the window is the hub's alone (the conformance suite's case).
    assert!(matches!(claim("early").await, Ok(ClaimOutcome::Granted(_))));

    let control = |len: usize, action: ControlAction| {
        store.append_control(&id, len, ControlEntry { at_ms: 1, action })
    };
    let publish = |field: &str, log_len: u64, sets: &[&str]| {
        let mark = Mark::Once {
            field: field.into(),
            log_len,
            at_ms: 1,
            sets: sets.iter().map(|s| (*s).to_owned()).collect(),
        };
        let id = id.clone();
        let bus = bus.clone();
        async move {
            bus.publish(&id, r#"{"type":"state","seq":"#, r#","ts":1}"#, &mark)
                .await
        }
    };
    control(0, ControlAction::Start).await.expect("start");
    let live = publish("state:live:1", 1, &["timeline"])
        .await
        .expect("publish");
    assert!(matches!(live, Published::Sent(_)));
    let not_open = ClaimOutcome::Refused(ClaimReason::NotOpen);
    assert_eq!(
        claim("bo").await.expect("claim"),
        not_open,
        "not revealed yet"
    );

    let reveal = publish("cue:1:1", 1, &["open:mug"]).await.expect("publish");
    assert!(matches!(reveal, Published::Sent(_)));
    assert!(
        matches!(claim("bo").await, Ok(ClaimOutcome::Granted(_))),
        "a not_open is not remembered: the same rid succeeds once the window opens"
    );

    control(1, ControlAction::Pause).await.expect("pause");
    assert_eq!(claim("cy").await.expect("claim"), not_open, "paused");
    control(2, ControlAction::Resume).await.expect("resume");
    assert!(matches!(claim("cy").await, Ok(ClaimOutcome::Granted(_))));
    // A chat setting logged after the resume leaves the drop live.
    let slow = dropwire_core::chat::ChatOp::Settings {
        enabled: None,
        slow_mode_s: Some(5),
        blocked_words: None,
    };
    control(3, ControlAction::Chat { op: slow })
        .await
        .expect("chat");
    assert!(
        matches!(claim("dee").await, Ok(ClaimOutcome::Granted(_))),
        "a chat entry is neither a pause nor a close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewers_frame_redis_publishes_is_the_one_viewers_get() {
    use dropwire_core::protocol::ServerMsg;
    use dropwire_store::{AudienceReport, Bus, RedisBus};
    let store = RedisStore::connect(RedisStoreConfig::new(shared().url()))
        .await
        .expect("connect");
    let bus = RedisBus::open(&store, "frame-test".into())
        .await
        .expect("bus");
    let id = fresh_id("viewers-frame");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    let report = AudienceReport {
        count: 3,
        ..AudienceReport::default()
    };
    let now = 1_800_000_000_123;
    let totals = bus
        .report_audience(&id, &report, now, now + 60_000)
        .await
        .expect("report");
    assert_eq!(totals.now, 3);
    let sent = bus.since(&id, 0, None).await.expect("since");
    let [(seq, body)] = &sent[..] else {
        panic!("one frame: {sent:?}")
    };
    let frame = ServerMsg::Viewers {
        seq: *seq,
        ts: now,
        count: 3,
    };
    assert_eq!(body, &serde_json::to_string(&frame).expect("json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_in_time_is_a_timeout_and_unavailable() {
    let _heavy = dropwire_store::testing::heavy().await;
    let server = RedisServer::start();
    let config = RedisStoreConfig {
        op_timeout: Duration::from_millis(200),
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config).await.expect("connect");
    let id = fresh_id("paused");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");

    // Redis holds every client's commands for a while: up, but not answering.
    let client = redis::Client::open(server.url()).expect("client");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection");
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .exec_async(&mut admin)
        .await
        .expect("pause");
    let err = store
        .claim(req(&id, "ana"))
        .await
        .expect_err("redis is paused");
    assert!(err.is_unavailable(), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("timed out") || said.contains("did not answer within"),
        "a timeout says so: {said}"
    );
    assert!(!said.contains("unexpected answer"), "{said}");
    eprintln!("redis paused: a claim failed with \"{said}\"");

    // Once Redis answers again, the same rid gets the one answer it was given meanwhile.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut again = store.claim(req(&id, "ana")).await;
    while again.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        again = store.claim(req(&id, "ana")).await;
    }
    assert!(matches!(again, Ok(ClaimOutcome::Granted(_))), "{again:?}");
}
