//! What `/metrics` says is what happened: per-drop gauges (stock left, holds, viewers) for
//! drops not yet closed, store calls timed by operation, and the counters a dashboard or an
//! alert reads present at zero before anything happened.

use crate::common;

use anyhow::{Context, Result};
use common::{TestServer, drop_spec, far_script};
use dropwire_server::metered::OPS;

async fn scrape(server: &TestServer) -> Result<String> {
    let resp = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await?;
    Ok(resp.text().await?)
}

/// The value of the sample `series` (name and labels exactly as exported), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn gauges_follow_the_drop_and_counters_start_at_zero() -> Result<()> {
    let server = TestServer::start().await?;
    let before = scrape(&server).await?;
    for op in OPS {
        let series = format!("dropwire_store_errors_total{{op=\"{op}\"}}");
        assert_eq!(sample(&before, &series), Some(0.0), "{series}");
    }
    for result in ["ok", "sold_out", "unavailable"] {
        let series = format!("dropwire_claims_total{{result=\"{result}\"}}");
        assert_eq!(sample(&before, &series), Some(0.0), "{series}");
    }
    let version = env!("CARGO_PKG_VERSION");
    let build = format!("dropwire_build_info{{version=\"{version}\"}}");
    assert_eq!(sample(&before, &build), Some(1.0));
    assert!(
        !before.contains("dropwire_stock_left{"),
        "no drop, no stock"
    );

    let id = server
        .create(drop_spec("gauged", 3, 1, far_script()))
        .await?;
    server.start_and_reveal(&id).await?;
    let mut viewer = server.watch_as(&id, "ada").await?;
    let answer = viewer.claim("mug", "r1").await?;
    assert_eq!(answer["ok"], true, "{answer}");

    let during = scrape(&server).await?;
    let stock = |sku: &str| format!("dropwire_stock_left{{drop=\"{id}\",sku=\"{sku}\"}}");
    assert_eq!(sample(&during, &stock("mug")), Some(2.0), "{during}");
    assert_eq!(sample(&during, &stock("jug")), Some(5.0));
    let holds = format!("dropwire_holds{{drop=\"{id}\"}}");
    assert_eq!(sample(&during, &holds), Some(1.0));
    let viewers = format!("dropwire_drop_viewers{{drop=\"{id}\"}}");
    assert_eq!(sample(&during, &viewers), Some(1.0));
    let ok = "dropwire_claims_total{result=\"ok\"}";
    assert_eq!(sample(&during, ok), Some(1.0));
    // The runtime's live tasks, read at the scrape: the viewer's socket is one of them.
    let tasks = sample(&during, "dropwire_runtime_tasks").context("tasks are gauged")?;
    assert!(tasks >= 1.0, "{tasks}");
    let timed = sample(&during, "dropwire_store_seconds_count{op=\"claim\"}")
        .context("claims are timed")?;
    assert_eq!(timed, 1.0);
    let errors = "dropwire_store_errors_total{op=\"claim\"}";
    assert_eq!(
        sample(&during, errors),
        Some(0.0),
        "a granted claim is no error"
    );

    // A claim for an unknown SKU is the request's fault, not the store's.
    let refused = viewer.claim("nope", "r2").await?;
    assert_eq!(refused["ok"], false, "{refused}");
    server
        .ok(&format!("/api/v1/drops/{id}/close"), serde_json::json!({}))
        .await?;
    let after = scrape(&server).await?;
    assert!(
        !after.contains("dropwire_stock_left{"),
        "a closed drop leaves the gauges"
    );
    assert!(!after.contains("dropwire_holds{"));
    assert_eq!(sample(&after, errors), Some(0.0));
    server.stop().await
}
