//! RedisStore against a real 3-master Redis Cluster the test harness starts on free ports:
//! the shared conformance suite and the bus contract, unchanged, and proof that drops
//! really spread over the masters (every key of a drop in its one slot).

use std::sync::OnceLock;

use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::testing::RedisCluster;
use dropwire_store::{RedisStore, RedisStoreConfig, Store};

fn shared() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

async fn store() -> RedisStore {
    // The conformance suite's virtual time judges deadlines (not the servers' clocks).
    let config = RedisStoreConfig {
        clock: dropwire_store::HoldClock::Caller,
        ..RedisStoreConfig::cluster(&shared().urls())
    };
    RedisStore::connect(config)
        .await
        .expect("connect to the cluster")
}

mod conformance {
    use super::*;
    dropwire_store::conformance_tests!(store());
}

/// The bus contract on the cluster: each drop's channel on its shard.
mod bus_conformance {
    use dropwire_store::conformance::bus::BusNet;

    use super::*;

    dropwire_store::bus_conformance_tests!(async {
        let store = store().await;
        BusNet::on_redis(store).await
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_spread_over_the_masters_and_each_keeps_to_one_slot() {
    let store = store().await;
    let ids: Vec<_> = (0..12).map(|i| fresh_id(&format!("spread-{i}"))).collect();
    for id in &ids {
        store
            .create_drop(record(id, 5, 1, 60))
            .await
            .expect("create");
        store.reserve_seq(id, 1).await.expect("seq");
    }
    let cluster = shared();
    let mut masters_with_drops = 0;
    for node in &cluster.nodes {
        let mut here = 0;
        for id in &ids {
            let rec = format!("dw:{{drop:{id}}}:rec");
            let seq = format!("dw:{{drop:{id}}}:seq");
            let slot_rec = node.cli(&["cluster", "keyslot", &rec]);
            let slot_seq = node.cli(&["cluster", "keyslot", &seq]);
            assert_eq!(slot_rec, slot_seq, "one slot per drop");
            let count = node.cli(&["cluster", "countkeysinslot", &slot_rec]);
            if count != "0" {
                here += 1;
            }
        }
        if here > 0 {
            masters_with_drops += 1;
        }
    }
    assert!(
        masters_with_drops >= 2,
        "12 drops all landed on one master: not a cluster"
    );
    let listed = store.list_drops().await.expect("list");
    assert!(ids.iter().all(|id| listed.iter().any(|r| r.id == *id)));
}
