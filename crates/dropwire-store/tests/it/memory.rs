//! MemoryStore: the shared conformance suite, in memory, journaled, and journaled with
//! frequent snapshots.

use dropwire_store::{MemoryStore, MemoryStoreConfig};

mod in_memory {
    use super::*;
    dropwire_store::conformance_tests!(async {
        MemoryStore::open(MemoryStoreConfig {
            data_dir: None,
            fsync: false,
            ..MemoryStoreConfig::default()
        })
        .expect("open")
    });
}

mod journaled {
    use super::*;
    dropwire_store::conformance_tests!(async {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        MemoryStore::open(MemoryStoreConfig {
            data_dir: Some(dir),
            fsync: true,
            ..MemoryStoreConfig::default()
        })
        .expect("open")
    });
}

/// The suite again with a snapshot (journal rotation, copy under the gate, truncation)
/// after every 16 records, so rounds run in the background in the middle of storms.
mod snapshotting {
    use super::*;
    use dropwire_store::SnapshotPolicy;
    dropwire_store::conformance_tests!(async {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        MemoryStore::open(MemoryStoreConfig {
            data_dir: Some(dir),
            fsync: false,
            snapshots: SnapshotPolicy {
                every_records: 16,
                every_bytes: 0,
                ..SnapshotPolicy::default()
            },
        })
        .expect("open")
    });
}

/// The bus contract on the in-memory bus: two nodes' ends over one memory store.
mod bus_conformance {
    use std::sync::Arc;

    use dropwire_store::MemoryBus;
    use dropwire_store::conformance::bus::BusNet;

    use super::*;

    dropwire_store::bus_conformance_tests!(async {
        let store: Arc<dyn dropwire_store::Store> = Arc::new(
            MemoryStore::open(MemoryStoreConfig {
                data_dir: None,
                fsync: false,
                ..MemoryStoreConfig::default()
            })
            .expect("open"),
        );
        let a = MemoryBus::new(Arc::clone(&store), "a");
        let b = a.join("b");
        BusNet {
            store,
            a: Arc::new(a),
            b: Arc::new(b),
        }
    });
}
