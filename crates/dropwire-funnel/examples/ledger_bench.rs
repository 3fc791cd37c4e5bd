//! Ledger writes per second, on embedded SQLite and on a real PostgreSQL this benchmark
//! starts itself: the facts of a 10,000-viewer claim storm (10,000 `viewer.attended`, 50
//! `claim.granted`) written as the hub's feed writes them — batches of up to 1,000 facts,
//! one transaction each — and, for comparison, one fact per transaction and 100 per batch.
//!
//!     cargo run --release -p dropwire-funnel --example ledger_bench [-- --viewers 10000]

use std::time::Instant;

use dropwire_core::{Fact, FactKind};
use dropwire_funnel::Ledger;
use dropwire_funnel::conformance::{PgServer, fresh};
use serde_json::json;

fn storm_facts(drop: &str, viewers: usize) -> Vec<Fact> {
    let now = 1_800_000_000_000;
    let mut facts: Vec<Fact> = (0..viewers)
        .map(|i| Fact::attended(drop, &format!("viewer-{i:06}"), now + i as u64))
        .collect();
    facts.extend((0..50).map(|i| Fact {
        id: format!("claim.granted:{drop}:CODE{i:04}"),
        kind: FactKind::ClaimGranted,
        maker: "default".into(),
        drop_id: Some(drop.into()),
        viewer_id: Some(format!("viewer-{i:06}")),
        at_ms: now + 10_000 + i,
        detail: json!({"code": format!("CODE{i:04}"), "sku": "mug", "price_cents": 3400, "currency": "EUR"}),
    }));
    facts
}

async fn run(name: &str, ledger: &Ledger, viewers: usize) -> anyhow::Result<()> {
    for batch in [1000usize, 100, 1] {
        let drop = fresh("bench");
        let facts = storm_facts(&drop, viewers);
        // One fact per transaction is slow: a tenth of the storm is enough to measure it.
        let facts = if batch == 1 {
            &facts[..facts.len() / 10]
        } else {
            &facts[..]
        };
        let started = Instant::now();
        for chunk in facts.chunks(batch) {
            ledger.record(chunk).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        let again = Instant::now();
        let dup = ledger.record(&facts[..facts.len().min(1000)]).await?;
        assert_eq!(dup, 0);
        println!(
            "| {name} | {batch} | {} | {:.2} | {:.0} | {:.1} |",
            facts.len(),
            secs,
            facts.len() as f64 / secs,
            again.elapsed().as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut viewers = 10_000;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--viewers" => viewers = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}; use --viewers N"),
        }
    }
    println!(
        "| database | facts per transaction | facts | seconds | facts/s | 1,000 duplicates (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir()?;
    let sqlite = Ledger::open(&format!(
        "sqlite:{}",
        dir.path().join("ledger.sqlite3").display()
    ))
    .await?;
    run("SQLite (WAL, synchronous=FULL)", &sqlite, viewers).await?;
    let pg = PgServer::start();
    let postgres = Ledger::open(&pg.create_database("bench")).await?;
    run("PostgreSQL (fsync off, test server)", &postgres, viewers).await?;
    Ok(())
}
