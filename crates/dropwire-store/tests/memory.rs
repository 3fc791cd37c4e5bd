//! MemoryStore: the shared conformance suite, in memory and journaled.

use dropwire_store::{MemoryStore, MemoryStoreConfig};

mod in_memory {
    use super::*;
    dropwire_store::conformance_tests!(async {
        MemoryStore::open(MemoryStoreConfig {
            data_dir: None,
            fsync: false,
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
        })
        .expect("open")
    });
}
