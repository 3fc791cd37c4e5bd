//! RedisStore against a real redis-server this test starts on a free port: the shared
//! conformance suite, Redis going away and coming back, and SIGKILL of Redis mid-storm.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dropwire_core::ClaimOutcome;
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
    dropwire_store::conformance_tests!(async {
        RedisStore::connect(RedisStoreConfig::new(shared().url()))
            .await
            .expect("connect")
    });
}

fn req(drop: &dropwire_core::DropId, viewer: &str) -> ClaimRequest {
    ClaimRequest {
        drop_id: drop.clone(),
        sku: "mug".into(),
        viewer_id: viewer.into(),
        handle: viewer.into(),
        rid: "r".into(),
        now_ms: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_means_unavailable_at_once_and_back_means_working() {
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
    let started = Instant::now();
    let err = store
        .claim(req(&id, "bo"))
        .await
        .expect_err("redis is gone");
    assert!(err.is_unavailable(), "{err}");
    assert!(store.ping().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers come at once, not after a hang"
    );

    server.restart();
    let mut back = None;
    for _ in 0..100 {
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
    let mut server = RedisServer::start();
    let store = Arc::new(
        RedisStore::connect(RedisStoreConfig::new(server.url()))
            .await
            .expect("connect"),
    );
    let id = fresh_id("redis-crash");
    store
        .create_drop(record(&id, 150, 1, 900))
        .await
        .expect("create");
    let (told_tx, mut told_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = id.clone();
            let told = told_tx.clone();
            tokio::spawn(async move {
                if let Ok(ClaimOutcome::Granted(c)) = store.claim(req(&id, &format!("v{i}"))).await
                {
                    let _ = told.send(c.code);
                }
            })
        })
        .collect();
    drop(told_tx);
    let mut told = HashSet::new();
    while told.len() < 20 {
        match told_rx.recv().await {
            Some(code) => told.insert(code),
            None => break,
        };
    }
    server.kill9();
    for t in tasks {
        let _ = t.await;
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
        150,
        "stock accounting holds"
    );
    assert_eq!(f.held as usize, listed.len());
}
