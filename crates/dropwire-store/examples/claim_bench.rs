//! Claims per second the MemoryStore sustains in-process, with and without the journal.
//!
//! `cargo run --release -p dropwire-store --example claim_bench [claims] [tasks]`

use std::sync::Arc;
use std::time::Instant;

use dropwire_core::DropId;
use dropwire_store::conformance::record;
use dropwire_store::{ClaimRequest, MemoryStore, MemoryStoreConfig, Store};

async fn run(label: &str, config: MemoryStoreConfig, claims: u64, tasks: u64) {
    let store = Arc::new(MemoryStore::open(config).expect("open"));
    let id = DropId::parse("bench").expect("id");
    store
        .create_drop(record(&id, 1_000_000, 1, 900))
        .await
        .expect("create");
    let started = Instant::now();
    let per_task = claims / tasks;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = Arc::clone(&store);
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_task as usize);
            for i in 0..per_task {
                let req = ClaimRequest {
                    drop_id: id.clone(),
                    sku: "mug".into(),
                    viewer_id: format!("v{t}-{i}"),
                    handle: "h".into(),
                    rid: "r".into(),
                    now_ms: 1,
                };
                let t0 = Instant::now();
                store.claim(req).await.expect("claim");
                lat.push(t0.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("task"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "| {label:<24} | {:>9.0} | {:>6} µs | {:>6} µs |",
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99)
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let claims: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let tasks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    println!("{claims} claims from {tasks} concurrent tasks, one SKU\n");
    println!("| store                    | claims/s  | p50       | p99       |");
    println!("|--------------------------|-----------|-----------|-----------|");
    run(
        "memory, no journal",
        MemoryStoreConfig {
            data_dir: None,
            fsync: false,
        },
        claims,
        tasks,
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "journal, no fsync",
        MemoryStoreConfig {
            data_dir: Some(dir.path().join("a")),
            fsync: false,
        },
        claims,
        tasks,
    )
    .await;
    run(
        "journal + fsync (group)",
        MemoryStoreConfig {
            data_dir: Some(dir.path().join("b")),
            fsync: true,
        },
        claims / 4,
        tasks,
    )
    .await;
}
