//! Claims per second through `RedisStore`, with and without batching, and the claim
//! latency callers see (p50/p99).
//!
//! ```sh
//! cargo run --release -p dropwire-store --example redis_bench -- [--url redis://127.0.0.1:PORT/] [--claims N] [--callers C] [--stock S]
//! ```
//!
//! Every claim is a different viewer's. With `--stock` below `--claims` it is a storm: the
//! first `S` are granted and the rest answered `sold_out` (each refusal is remembered for
//! its rid, so it writes too).
//!
//! Without `--url` it starts its own redis-server on a free port (`appendonly yes`,
//! `appendfsync always`, like the test harness), so every script call is one fsync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwire_core::ClaimOutcome;
use dropwire_core::claim::ClaimReason;
use dropwire_store::conformance::{fresh_id, record};
use dropwire_store::testing::RedisServer;
use dropwire_store::{ClaimRequest, RedisStore, RedisStoreConfig, Store};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    url: Option<String>,
    claims: usize,
    callers: usize,
    /// Units on sale; `None`: as many as there are claims.
    stock: Option<usize>,
}

fn args() -> Result<Args> {
    let mut out = Args {
        url: None,
        claims: 20_000,
        callers: 64,
        stock: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} wants a value"));
        match a.as_str() {
            "--url" => out.url = Some(value()?),
            "--claims" => out.claims = value()?.parse()?,
            "--callers" => out.callers = value()?.parse()?,
            "--stock" => out.stock = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

async fn run(url: &str, max_batch: usize, args: &Args) -> Result<()> {
    let (claims, callers) = (args.claims, args.callers);
    let stock = args.stock.unwrap_or(claims).min(claims);
    let mut config = RedisStoreConfig::new(url);
    config.max_batch = max_batch;
    config.op_timeout = Duration::from_secs(5);
    let store = Arc::new(RedisStore::connect(config).await?);
    let id = fresh_id("bench");
    store
        .create_drop(record(&id, u32::try_from(stock)?, 1, 900))
        .await?;
    let per_caller = claims / callers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_caller);
                let mut granted = 0usize;
                for i in 0..per_caller {
                    let viewer = format!("v{c}-{i}");
                    let t = Instant::now();
                    let out = store
                        .claim(ClaimRequest {
                            drop_id: id.clone(),
                            sku: "mug".into(),
                            handle: viewer.clone(),
                            viewer_id: viewer,
                            rid: "r".into(),
                            now_ms: 1,
                            refusal: None,
                            members_only: false,
                            per_viewer_limit: None,
                            draw_at_ms: None,
                            ticket: None,
                        })
                        .await?;
                    lat.push(t.elapsed());
                    match out {
                        ClaimOutcome::Granted(_) => granted += 1,
                        ClaimOutcome::Refused(ClaimReason::SoldOut) => {}
                        other => {
                            return Err(format!("neither granted nor sold out: {other:?}").into());
                        }
                    }
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((lat, granted))
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(claims);
    let mut granted = 0;
    for t in tasks {
        let (l, g) = t.await??;
        lat.extend(l);
        granted += g;
    }
    let took = started.elapsed();
    lat.sort_unstable();
    let held = store.figures(&id).await?.held;
    let expected = stock.min(lat.len());
    if granted != expected || held as usize != expected {
        return Err(format!("{granted} granted and {held} held; expected {expected}").into());
    }
    println!(
        "max_batch {max_batch:>3}: {:>6} claims ({granted} granted) by {callers} callers in {:>6.2} s = {:>7.0} claims/s; p50 {:>6.2} ms, p99 {:>6.2} ms",
        lat.len(),
        took.as_secs_f64(),
        lat.len() as f64 / took.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let own = args.url.is_none().then(RedisServer::start);
    let url = args
        .url
        .clone()
        .or_else(|| own.as_ref().map(RedisServer::url))
        .unwrap_or_default();
    println!("redis at {url} (appendfsync always when started here)");
    for max_batch in [1, 64, 256] {
        run(&url, max_batch, &args).await?;
    }
    Ok(())
}
