//! `dropwire serve --demo`, the real binary: the example drop is live from the start, its
//! overlay URL is in the banner, a viewer gets its snapshot at once, and restarts reuse it
//! until it is over.

use crate::common;

use anyhow::{Context, Result};
use common::{ADMIN, Spawned, Viewer};
use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../../../../examples/speckled-mugs.json");

/// The banner's demo overlay URL.
fn overlay_url(hub: &Spawned) -> Result<String> {
    let line = hub
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("demo overlay:"))
        .with_context(|| format!("no demo overlay in the banner {:?}", hub.banner))?;
    Ok(line.trim().to_owned())
}

async fn get(http: &reqwest::Client, url: String) -> Result<(u16, Value)> {
    let resp = http.get(url).bearer_auth(ADMIN).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// The drop `id` as the API shows it; it must exist.
async fn drop_of(http: &reqwest::Client, hub: &Spawned, id: &str) -> Result<Value> {
    let (status, body) = get(http, format!("{}/api/v1/drops/{id}", hub.base)).await?;
    assert_eq!(status, 200, "GET drop {id}: {body}");
    Ok(body)
}

#[tokio::test]
async fn the_demo_drop_is_live_at_once_and_reused_until_it_is_over() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = ["--data-dir".as_ref(), dir.path().as_os_str()];
    let http = reqwest::Client::new();
    let example: Value = serde_json::from_str(EXAMPLE)?;

    let hub = Spawned::serve(&[data[0], data[1], "--demo".as_ref()])?;
    assert_eq!(overlay_url(&hub)?, format!("{}/live/demo", hub.base));
    let demo = drop_of(&http, &hub, "demo").await?;
    assert_eq!(demo["state"], "live", "{demo}");
    assert_eq!(demo["title"], example["title"]);
    let skus = |v: &Value| -> Vec<Value> {
        v["inventory"]
            .as_array()
            .map(|items| items.iter().map(|i| i["sku"].clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(skus(&demo), skus(&example), "{demo}");
    let started_ms = demo["started_ms"].as_u64().context("started_ms")?;
    let (status, _) = get(&http, overlay_url(&hub)?).await?;
    assert_eq!(status, 200, "the overlay page");

    // A viewer who opens the overlay gets the live drop, its intro already fired.
    let mut viewer = Viewer::open(&hub.ws_base(), "demo").await?;
    viewer.send(json!({"type": "hello"})).await?;
    viewer.next_of("welcome").await?;
    let snapshot = viewer.next_of("snapshot").await?;
    assert_eq!(snapshot["drop"]["id"], "demo", "{snapshot}");
    assert_eq!(snapshot["drop"]["state"], "live", "{snapshot}");
    assert_eq!(
        snapshot["drop"]["current_cue"]["cue"]["type"], "intro",
        "{snapshot}"
    );
    drop(viewer);
    drop(hub);

    // A restart on the same data (with the environment twin) keeps the running demo.
    let hub = Spawned::serve_with_env(&data, &[("DROPWIRE_DEMO", "true")])?;
    assert_eq!(overlay_url(&hub)?, format!("{}/live/demo", hub.base));
    let demo = drop_of(&http, &hub, "demo").await?;
    assert_eq!(demo["state"], "live", "{demo}");
    assert_eq!(demo["started_ms"].as_u64(), Some(started_ms), "{demo}");

    // Once it is over, the next start makes demo-2 (and leaves demo closed).
    let resp = http
        .post(format!("{}/api/v1/drops/demo/close", hub.base))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200, "close the demo");
    drop(hub);
    let hub = Spawned::serve(&[data[0], data[1], "--demo".as_ref()])?;
    assert_eq!(overlay_url(&hub)?, format!("{}/live/demo-2", hub.base));
    assert_eq!(drop_of(&http, &hub, "demo-2").await?["state"], "live");
    assert_eq!(drop_of(&http, &hub, "demo").await?["state"], "closed");

    // Without --demo, no demo line and no new drop.
    drop(hub);
    let hub = Spawned::serve(&data)?;
    assert!(overlay_url(&hub).is_err(), "{:?}", hub.banner);
    let (status, _) = get(&http, format!("{}/api/v1/drops/demo-3", hub.base)).await?;
    assert_eq!(status, 404);
    Ok(())
}
