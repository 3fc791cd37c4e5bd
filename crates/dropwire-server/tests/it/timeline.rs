//! The timeline and holds on tokio's paused clock: exact cue times, no sleeping for real.

use crate::common;

use std::sync::Arc;

use anyhow::{Context, Result};
use dropwire_core::{ControlAction, DropSpec, FireTarget};
use dropwire_server::AppState;
use dropwire_server::auth::Viewer;
use dropwire_server::clock::Clock;
use dropwire_server::hub::{DropHub, Frame};
use serde_json::{Value, json};
use tokio::sync::broadcast;

async fn paused_server() -> Result<AppState> {
    let mut opts = common::memory_options()?;
    opts.clock = Clock::tokio_anchored();
    Ok(AppState::start(opts).await?)
}

async fn drop_with(state: &AppState, id: &str, cues: Value, hold_s: u32) -> Result<Arc<DropHub>> {
    let mut spec: DropSpec = serde_json::from_value(common::drop_spec(id, 40, 1, cues))?;
    spec.hold_s = hold_s;
    spec.script.duration_s = 600;
    common::hub_of(state, id, spec).await
}

/// The next broadcast of one of `kinds`, as JSON.
async fn next(rx: &mut broadcast::Receiver<Frame>, kinds: &[&str]) -> Result<Value> {
    loop {
        let frame = rx.recv().await.context("hub stopped")?;
        let v: Value = serde_json::from_str(frame.text.as_str())?;
        if kinds.contains(&v["type"].as_str().unwrap_or("")) {
            return Ok(v);
        }
    }
}

fn describe(v: &Value, t0: u64) -> (String, u64) {
    let what = match v["type"].as_str() {
        Some("cue") => format!("cue:{}", v["cue"]["type"].as_str().unwrap_or("?")),
        Some("state") => format!("state:{}", v["state"].as_str().unwrap_or("?")),
        Some("stock") => format!("stock:{}", v["items"][0]["left"]),
        other => other.unwrap_or("?").to_owned(),
    };
    (what, v["ts"].as_u64().unwrap_or(0) - t0)
}

#[tokio::test(start_paused = true)]
async fn cues_fire_on_live_time_pause_holds_fire_now_fires_once_and_close_ends() -> Result<()> {
    let state = paused_server().await?;
    let cues = json!([
        {"at_s": 0, "type": "intro"},
        {"at_s": 90, "type": "reveal", "sku": "mug"},
        {"at_s": 300, "type": "flash_coupon", "code": "KILN10", "percent_off": 10, "ttl_s": 120},
        {"at_s": 540, "type": "soft_close"},
        {"at_s": 600, "type": "close"}
    ]);
    let hub = drop_with(&state, "timeline", cues, 900).await?;
    let mut rx = hub.subscribe();
    let t0 = state.clock.now_ms();
    hub.control(ControlAction::Start).await?;
    let kinds = ["cue", "state"];
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next(&mut rx, &kinds).await?, t0));
    }
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    hub.control(ControlAction::Pause).await?;
    seen.push(describe(&next(&mut rx, &kinds).await?, t0));
    tokio::time::sleep(std::time::Duration::from_secs(1000)).await;
    assert!(matches!(
        rx.try_recv(),
        Err(broadcast::error::TryRecvError::Empty) | Ok(_)
    ));
    hub.control(ControlAction::Resume).await?;
    seen.push(describe(&next(&mut rx, &kinds).await?, t0));
    seen.push(describe(&next(&mut rx, &kinds).await?, t0));
    hub.control(ControlAction::Fire {
        cue: FireTarget::Script(3),
    })
    .await?;
    for _ in 0..3 {
        seen.push(describe(&next(&mut rx, &kinds).await?, t0));
    }
    let expect = [
        ("state:live", 0),
        ("cue:intro", 0),
        ("cue:reveal", 90_000),
        ("state:paused", 100_000),
        ("state:live", 1_100_000),
        ("cue:flash_coupon", 1_300_000),
        ("cue:soft_close", 1_300_000),
        ("cue:close", 1_600_000),
        ("state:closed", 1_600_000),
    ];
    let expect: Vec<(String, u64)> = expect.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect();
    assert_eq!(seen, expect);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn an_expired_hold_returns_its_unit_and_the_stock_is_broadcast() -> Result<()> {
    let state = paused_server().await?;
    let cues = json!([{"at_s": 0, "type": "reveal", "sku": "mug"}, {"at_s": 600, "type": "close"}]);
    let hub = drop_with(&state, "holds", cues, 60).await?;
    let mut rx = hub.subscribe();
    let t0 = state.clock.now_ms();
    hub.control(ControlAction::Start).await?;
    assert_eq!(
        describe(&next(&mut rx, &["stock"]).await?, t0).0,
        "stock:40"
    );

    let ana = Viewer {
        id: "ana".into(),
        handle: "ana".into(),
    };
    let result = hub.claim(Some(&ana), "mug".into(), "r1".into()).await;
    let result = serde_json::to_value(&result)?;
    assert_eq!(result["ok"], true, "{result}");
    let deadline = result["hold_until_ms"].as_u64().context("hold_until_ms")? - t0;
    assert_eq!(
        describe(&next(&mut rx, &["stock"]).await?, t0).0,
        "stock:39"
    );

    // The sweeper runs every second: the unit is back within a second of the deadline.
    let back = describe(&next(&mut rx, &["stock"]).await?, t0);
    assert_eq!(back.0, "stock:40");
    assert!(
        (deadline..=deadline + 1_250).contains(&back.1),
        "{back:?} vs deadline {deadline}"
    );
    let claims = state.store.claims(&hub.id).await?;
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].state, dropwire_core::ClaimState::Expired);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_early_access_window_opens_to_everyone_on_time() -> Result<()> {
    let state = paused_server().await?;
    let cues =
        json!([{"at_s": 30, "type": "reveal", "sku": "mug"}, {"at_s": 600, "type": "close"}]);
    let mut spec: DropSpec = serde_json::from_value(common::drop_spec("early-timed", 40, 1, cues))?;
    spec.script.duration_s = 600;
    spec.early_access_s = 120;
    let hub = common::hub_of(&state, "early-timed", spec).await?;
    state.store.admit(&hub.id, "member").await?;
    let viewer = |name: &str| Viewer {
        id: name.into(),
        handle: name.into(),
    };
    let claim = |who: Viewer, rid: &'static str| {
        let hub = Arc::clone(&hub);
        async move {
            let msg = hub.claim(Some(&who), "mug".into(), rid.into()).await;
            serde_json::to_value(&msg).map_err(anyhow::Error::from)
        }
    };
    let t0 = state.clock.now_ms();
    hub.control(ControlAction::Start).await?;
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    let public_ms = t0 + 30_000 + 120_000;
    let early = claim(viewer("public"), "p1").await?;
    assert_eq!(
        (early["reason"].as_str(), early["opens_at_ms"].as_u64()),
        (Some("not_open"), Some(public_ms))
    );
    assert_eq!(claim(viewer("member"), "m1").await?["ok"], true);
    // One millisecond before the public opening: still the segment only.
    tokio::time::sleep(std::time::Duration::from_millis(
        public_ms - 1 - state.clock.now_ms(),
    ))
    .await;
    assert_eq!(claim(viewer("public"), "p2").await?["reason"], "not_open");
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    let open = claim(viewer("public"), "p1").await?;
    assert_eq!(open["ok"], true, "the same rid, once public: {open}");
    Ok(())
}
