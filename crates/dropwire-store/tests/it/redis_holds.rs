//! RedisStore's holds against a real redis-server: deadlines judged by the server's clock,
//! a sweep that costs one call when nothing is due, the slow pass that finds a hold the
//! index missed, and the retention of a retired drop's keys. And the bus letting go of the
//! drops whose hubs have gone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::redis::{close, req_at};
use dropwire_core::{ClaimOutcome, ClaimState, DropId};
use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::testing::RedisServer;
use dropwire_store::{HoldClock, RedisStore, RedisStoreConfig, Store, StoreError};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn granted(
    store: &RedisStore,
    drop: &DropId,
    viewer: &str,
    now: u64,
) -> dropwire_core::Claim {
    match store.claim(req_at(drop, viewer, now)).await.expect("claim") {
        ClaimOutcome::Granted(c) => c,
        other => panic!("{other:?}"),
    }
}

/// Every key of a drop, and the code index entries of its claims.
fn keys_of(server: &RedisServer, drop: &DropId, codes: &[&str]) -> Vec<String> {
    let listed = server.cli(&["--scan", "--pattern", &format!("dw:{{drop:{drop}}}:*")]);
    let mut keys: Vec<String> = listed.lines().map(str::to_owned).collect();
    keys.extend(codes.iter().map(|c| format!("dw:code:{c}")));
    keys
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cli(&["pttl", key]).parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_clock_judges_deadlines_whatever_the_node_says() {
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisStoreConfig::new(server.url()))
        .await
        .expect("connect");
    let id = fresh_id("skew");
    // Holds of 1 s (below what a drop spec allows; the store does not care).
    store
        .create_drop(record(&id, 10, 1, 1))
        .await
        .expect("create");
    let day = 86_400_000;
    let before = now_ms();
    // A node a day behind: the claim is dated, and its hold timed, by Redis.
    let live = granted(&store, &id, "ana", before - day).await;
    let after = now_ms();
    assert!(
        (before..=after).contains(&live.created_ms),
        "{} not in {before}..={after}",
        live.created_ms
    );
    assert_eq!(live.hold_until_ms, live.created_ms + 1000);
    // A node a day ahead can expire nothing early…
    let swept = store.expire_due(after + day).await.expect("sweep");
    assert!(swept.is_empty(), "{swept:?}");
    // …and may redeem a live hold (it is live by Redis's clock).
    let redeemed = store.redeem(&live.code, after + day).await.expect("redeem");
    assert_eq!(redeemed.state, ClaimState::Redeemed);

    let late = granted(&store, &id, "bo", 0).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A node a day behind cannot redeem a hold whose deadline has passed.
    let refused = store.redeem(&late.code, now_ms() - day).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::NotHeld {
                state: ClaimState::Expired,
                ..
            })
        ),
        "{refused:?}"
    );
    // A third one, swept by a node a day behind: expired all the same.
    let swept_late = granted(&store, &id, "cy", now_ms()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let swept = store.expire_due(now_ms() - day).await.expect("sweep");
    assert_eq!(
        swept.iter().map(|c| &c.code).collect::<Vec<_>>(),
        vec![&swept_late.code]
    );
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.held, f.redeemed, f.expired), (0, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_due_a_sweep_is_one_call_however_many_drops() {
    let server = RedisServer::start();
    let config = RedisStoreConfig {
        clock: HoldClock::Caller,
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config).await.expect("connect");
    let t0 = now_ms();
    for i in 0..50 {
        let id = fresh_id(&format!("many-{i}"));
        store
            .create_drop(record(&id, 10, 1, 900))
            .await
            .expect("create");
        granted(&store, &id, "ana", t0).await;
        if i % 2 == 0 {
            close(&store, &id, t0).await;
        }
    }
    // The first sweep walks the live drops (the slow pass); the next ones do not.
    assert!(store.expire_due(t0).await.expect("sweep").is_empty());
    server.cli(&["config", "resetstat"]);
    for _ in 0..3 {
        assert!(store.expire_due(t0 + 1000).await.expect("sweep").is_empty());
    }
    // Three calls of `due.lua`, each one range read of the index: nothing per drop.
    let stats = server.cli(&["info", "commandstats"]);
    let mut calls: Vec<&str> = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_config"))
        .filter_map(|l| l.split(",usec=").next())
        .collect();
    calls.sort_unstable();
    assert_eq!(
        calls,
        ["cmdstat_evalsha:calls=3", "cmdstat_zrangebyscore:calls=3"]
    );
    // Once the holds are due, every drop's are expired: 50.
    let swept = store.expire_due(t0 + 900_000).await.expect("sweep");
    assert_eq!(swept.len(), 50);
    assert_eq!(server.cli(&["zcard", "dw:holds-due"]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_the_index_missed_is_found_by_the_slow_pass() {
    let server = RedisServer::start();
    let config = || RedisStoreConfig {
        clock: HoldClock::Caller,
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config()).await.expect("connect");
    let t0 = now_ms();
    // Its first sweep walks the live drops; later ones trust the index.
    store.expire_due(t0).await.expect("sweep");
    let id = fresh_id("missed");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    let c = granted(&store, &id, "ana", t0).await;
    // As if the node died between the claim and its index write.
    assert_eq!(server.cli(&["zrem", "dw:holds-due", id.as_str()]), "1");
    assert!(
        store
            .expire_due(t0 + 60_000)
            .await
            .expect("sweep")
            .is_empty()
    );
    // Another node (or this one after REINDEX_EVERY) walks the live drops first.
    let other = RedisStore::connect(config()).await.expect("connect");
    let swept = other.expire_due(t0 + 60_000).await.expect("sweep");
    assert_eq!(
        swept.iter().map(|c| &c.code).collect::<Vec<_>>(),
        vec![&c.code]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_drop_keeps_its_keys_for_the_retention_only() {
    let server = RedisServer::start();
    let retention = Duration::from_secs(86_400);
    // Deadlines judged by the time the test passes, not the server's clock: a loaded
    // machine may take more than the 1 s hold between a claim and its redeem.
    let config = RedisStoreConfig {
        retention: Some(retention),
        clock: HoldClock::Caller,
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config).await.expect("connect");
    // A second ago: the 1 s holds below are due by now.
    let t0 = now_ms() - 1000;
    let (open, done) = (fresh_id("stays-open"), fresh_id("retired"));
    store
        .create_drop(record(&open, 10, 1, 60))
        .await
        .expect("create");
    // Holds of 1 s (the store allows what a drop spec does not).
    store
        .create_drop(record(&done, 10, 1, 1))
        .await
        .expect("create");
    let kept = granted(&store, &open, "ana", t0).await;
    let a = granted(&store, &done, "ana", t0).await;
    let b = granted(&store, &done, "bo", t0).await;
    close(&store, &done, t0 + 1).await;
    let codes = [a.code.as_str(), b.code.as_str()];
    // Closed with holds: nothing expires yet.
    for key in keys_of(&server, &done, &codes) {
        assert_eq!(pttl(&server, &key), -1, "{key}");
    }
    store.redeem(&a.code, t0).await.expect("redeem");
    let swept = store.expire_due(now_ms()).await.expect("sweep");
    assert_eq!(
        swept.iter().map(|c| &c.code).collect::<Vec<_>>(),
        vec![&b.code]
    );
    // Closed and settled: every key of the drop expires within the retention.
    let keys = keys_of(&server, &done, &codes);
    assert!(keys.len() >= 12, "{keys:?}");
    for key in &keys {
        let left = pttl(&server, key);
        let bound = i64::try_from(retention.as_millis()).expect("ms");
        assert!(left > 0 && left <= bound, "{key}: {left}");
    }
    // The open drop's keys stay.
    for key in keys_of(&server, &open, &[kept.code.as_str()]) {
        assert_eq!(pttl(&server, &key), -1, "{key}");
    }
    let open_ids: Vec<DropId> = store
        .open_drops()
        .await
        .expect("open")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(open_ids, vec![open.clone()]);
    let listed = store.list_drops().await.expect("list");
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_its_keys_expire_a_drop_is_forgotten() {
    let server = RedisServer::start();
    let config = || RedisStoreConfig {
        retention: Some(Duration::from_millis(300)),
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config()).await.expect("connect");
    let id = fresh_id("forgotten");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    let code = granted(&store, &id, "ana", 0).await.code;
    close(&store, &id, now_ms()).await;
    store.redeem(&code, 0).await.expect("redeem");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.drop_record(&id).await.expect("read"), None);
    assert!(matches!(
        store.redeem(&code, 0).await,
        Err(StoreError::NoSuchClaim(_))
    ));
    // The next node's slow pass drops it from the list of every drop.
    let other = RedisStore::connect(config()).await.expect("connect");
    other.expire_due(now_ms()).await.expect("sweep");
    assert!(other.list_drops().await.expect("list").is_empty());
    assert_eq!(server.cli(&["zcard", "dw:drops"]), "0");
    assert_eq!(server.cli(&["keys", "*drop*"]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_unsubscribes_the_drops_whose_queue_is_gone() {
    use dropwire_store::Bus;
    let server = RedisServer::start();
    let store = RedisStore::connect(RedisStoreConfig::new(server.url()))
        .await
        .expect("connect");
    let bus = dropwire_store::RedisBus::open(&store, "tidy".into())
        .await
        .expect("bus");
    let ids: Vec<DropId> = (0..300).map(|i| fresh_id(&format!("sub-{i}"))).collect();
    let mut queues = Vec::new();
    for id in &ids {
        queues.push(bus.subscribe(id).await.expect("subscribe"));
    }
    let channels = || {
        let listed = server.cli(&["pubsub", "shardchannels"]);
        listed.lines().filter(|l| !l.is_empty()).count()
    };
    assert_eq!(channels(), 300);
    // Every hub but the first retires at once; the first's drop is subscribed again later.
    let kept = queues.remove(0);
    drop(queues);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while channels() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "still {} channels",
            channels()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = bus.subscribe(&ids[1]).await.expect("subscribe again");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(channels(), 2, "a live queue's channel stays");
    drop((kept, again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_an_older_build_left_are_listed_then_the_closed_ones_retired() {
    let server = RedisServer::start();
    let older = RedisStore::connect(RedisStoreConfig {
        retention: None,
        ..RedisStoreConfig::new(server.url())
    })
    .await
    .expect("connect");
    let (open, done) = (fresh_id("old-open"), fresh_id("old-done"));
    for id in [&open, &done] {
        older
            .create_drop(record(id, 10, 1, 60))
            .await
            .expect("create");
    }
    close(&older, &done, now_ms()).await;
    // As a build without the live index left them.
    server.cli(&["del", "dw:live", "dw:live:seen"]);
    let rec = format!("dw:{{drop:{done}}}:rec");
    assert_eq!(pttl(&server, &rec), -1);

    let config = RedisStoreConfig {
        retention: Some(Duration::from_secs(86_400)),
        ..RedisStoreConfig::new(server.url())
    };
    let store = RedisStore::connect(config).await.expect("connect");
    let listed = |records: Vec<dropwire_core::DropRecord>| -> Vec<DropId> {
        let mut ids: Vec<DropId> = records.into_iter().map(|r| r.id).collect();
        ids.sort();
        ids
    };
    let mut both = vec![open.clone(), done.clone()];
    both.sort();
    assert_eq!(listed(store.open_drops().await.expect("open")), both);
    store.expire_due(now_ms()).await.expect("sweep");
    assert_eq!(listed(store.open_drops().await.expect("open")), vec![open]);
    assert!(pttl(&server, &rec) > 0, "the closed drop's keys now expire");
}
