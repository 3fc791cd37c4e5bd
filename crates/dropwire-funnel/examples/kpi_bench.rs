//! The analytics summary over a million facts, on embedded SQLite and on a real PostgreSQL
//! this benchmark starts itself: a seeded history (400 drops of three kinds, 100,000
//! viewers) imported in batches, then the summary's queries (every drop's KPIs and LTV by
//! event type) and one drop's repeat curve, timed (best and worst of 5 runs).
//!
//!     cargo run --release -p dropwire-funnel --example kpi_bench [-- --drops 400]

use std::time::Instant;

use dropwire_funnel::Ledger;
use dropwire_funnel::conformance::PgServer;
use dropwire_funnel::conformance::history::{HistorySpec, history};

const T0: u64 = 1_704_067_200_000;

async fn run(name: &str, ledger: &Ledger, spec: &HistorySpec) -> anyhow::Result<()> {
    let facts = history(spec);
    let started = Instant::now();
    for chunk in facts.chunks(50_000) {
        ledger.import(chunk).await?;
    }
    let import_s = started.elapsed().as_secs_f64();
    let now = T0 + 3 * 365 * 86_400_000;
    let mut times = Vec::new();
    let mut drops = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let kpis = ledger.drop_kpis("default", now, None).await?;
        let ltv = ledger.ltv_by_kind("default", now).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        drops = kpis.len();
        assert_eq!(ltv.len(), 3);
    }
    let t = Instant::now();
    let curve = ledger.repeat_curve("default", "hist-0100").await?;
    let curve_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(curve.len(), 91);
    times.sort_by(f64::total_cmp);
    println!(
        "| {name} | {} | {drops} | {import_s:.1} | {:.0} | {:.0} | {curve_ms:.0} |",
        facts.len(),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut drops = 400;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--drops" => drops = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}; use --drops N"),
        }
    }
    let spec = HistorySpec {
        seed: 7,
        drops,
        viewers: 100_000,
        attend_per_drop: 1800,
        waitlist_per_drop: 400,
        claims_per_drop: 150,
        t0_ms: T0,
    };
    println!(
        "| database | facts | drops | import (s) | summary, best of 5 (ms) | worst (ms) | one drop's repeat curve (ms) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir()?;
    let sqlite = Ledger::open(&format!(
        "sqlite:{}",
        dir.path().join("ledger.sqlite3").display()
    ))
    .await?;
    run("SQLite (WAL, synchronous=FULL)", &sqlite, &spec).await?;
    let pg = PgServer::start();
    let postgres = Ledger::open(&pg.create_database("kpi")).await?;
    run("PostgreSQL (test server, fsync off)", &postgres, &spec).await?;
    Ok(())
}
