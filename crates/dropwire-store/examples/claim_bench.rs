//! Claims per second the MemoryStore sustains in-process: without a journal, journaled
//! without fsync, and journaled with fsync'd group commits. Concurrent tasks claim round
//! robin over four SKUs with stock to spare, each claim from a new viewer.
//!
//! `cargo run --release -p dropwire-store --example claim_bench [claims] [tasks]`

use std::sync::Arc;
use std::time::Instant;

use dropwire_core::{ClaimOutcome, DropId, DropRecord};
use dropwire_store::{ClaimRequest, MemoryStore, MemoryStoreConfig, Store};

const SKUS: [&str; 4] = ["mug", "jug", "bowl", "vase"];

fn bench_record(id: &DropId) -> DropRecord {
    let inventory: Vec<_> = SKUS
        .iter()
        .map(|sku| {
            serde_json::json!({"sku": sku, "name": sku, "price_cents": 3400,
                "stock": 1_000_000, "per_viewer_limit": 1})
        })
        .collect();
    let spec = serde_json::from_value(serde_json::json!({
        "id": id.as_str(), "title": "Bench", "hold_s": 900, "inventory": inventory,
        "script": {"duration_s": 600, "cues": [{"at_s": 0, "type": "reveal", "sku": "mug"},
            {"at_s": 600, "type": "close"}]}
    }))
    .expect("valid spec");
    DropRecord {
        id: id.clone(),
        spec,
        obs_key: "key".into(),
        created_ms: 1,
        log: Vec::new(),
        recipe: None,
        maker: "default".into(),
    }
}

async fn run(label: &str, config: MemoryStoreConfig, claims: u64, tasks: u64) {
    let store = Arc::new(MemoryStore::open(config).expect("open"));
    let id = DropId::parse("bench").expect("id");
    store.create_drop(bench_record(&id)).await.expect("create");
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
                    sku: SKUS[(i % 4) as usize].into(),
                    viewer_id: format!("v{t}-{i}"),
                    handle: "h".into(),
                    rid: "r".into(),
                    now_ms: 1,
                    refusal: None,
                    members_only: false,
                    per_viewer_limit: None,
                    draw_at_ms: None,
                    ticket: None,
                };
                let t0 = Instant::now();
                let outcome = store.claim(req).await.expect("claim");
                assert!(matches!(outcome, ClaimOutcome::Granted(_)), "{outcome:?}");
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
    println!(
        "{claims} claims ({} with fsync) from {tasks} concurrent tasks over {} SKUs\n",
        claims / 4,
        SKUS.len()
    );
    println!("| store                    | claims/s  | p50       | p99       |");
    println!("|--------------------------|-----------|-----------|-----------|");
    run(
        "memory, no journal",
        MemoryStoreConfig {
            data_dir: None,
            fsync: false,
            ..MemoryStoreConfig::default()
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
            ..MemoryStoreConfig::default()
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
            ..MemoryStoreConfig::default()
        },
        claims / 4,
        tasks,
    )
    .await;
}
