//! The maker's socket: the control panel follows its drop on the viewer WebSocket with the
//! admin token in its hello (`admin`), hears every broadcast, and is no viewer (not in the
//! counts, not in the ledger); a wrong admin token is told and watches as a viewer.

use crate::common;

use anyhow::{Context, Result};
use common::{ADMIN, TestServer, drop_spec, far_script};
use serde_json::{Value, json};

async fn viewers(server: &TestServer, id: &str) -> Result<Value> {
    Ok(server.get(&format!("/api/v1/drops/{id}/stats")).await?.1["viewers"].clone())
}

/// Waits until the ledger has every fact so far (unique viewers are read from it).
async fn flush_ledger(server: &TestServer) -> Result<()> {
    let funnel = server.state.funnel.as_ref().context("ledger")?;
    funnel.feed.flush(common::PATIENCE).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_makers_socket_hears_the_drop_without_counting_as_a_viewer() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("maker", 5, 1, far_script()))
        .await?;

    let mut maker = server.connect(&id).await?;
    maker.send(json!({"type": "hello", "admin": ADMIN})).await?;
    let welcome = maker.next_of("welcome").await?;
    assert_eq!(welcome["maker"], true, "{welcome}");
    assert_eq!(welcome["viewer_id"], Value::Null);
    let snapshot = maker.next_of("snapshot").await?;
    assert_eq!(snapshot["drop"]["viewers"], 0, "the maker is not counted");
    assert_eq!(
        viewers(&server, &id).await?,
        json!({"now": 0, "peak": 0, "unique": 0})
    );

    // A viewer: counted once, and the maker hears the count.
    let mut ana = server.watch_as(&id, "ana").await?;
    let count = maker.next_of("viewers").await?;
    assert_eq!(count["count"], 1);
    flush_ledger(&server).await?;
    assert_eq!(
        viewers(&server, &id).await?,
        json!({"now": 1, "peak": 1, "unique": 1})
    );

    // A claim: the maker hears the stock and the leaderboard move.
    server.start_and_reveal(&id).await?;
    maker.cue("reveal").await?;
    ana.cue("reveal").await?;
    let granted = ana.claim("mug", "r1").await?;
    assert_eq!(granted["ok"], true, "{granted}");
    let stock = maker.next_of("stock").await?;
    assert_eq!(common::left_of(&stock, "mug"), Some(4), "{stock}");
    let board = maker.next_of("leaderboard").await?;
    assert_eq!(board["top"][0]["handle"], "ana", "{board}");

    // A wrong admin token is told, and that socket watches (and counts) as a viewer.
    let mut wrong = server.connect(&id).await?;
    wrong
        .send(json!({"type": "hello", "admin": "not-the-admin-token"}))
        .await?;
    let error = wrong.next().await?;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_admin_token", "{error}");
    let welcome = wrong.next_of("welcome").await?;
    assert_eq!(welcome.get("maker"), None, "{welcome}");
    common::eventually("two viewers now", || async {
        Ok(viewers(&server, &id).await?["now"] == 2)
    })
    .await?;

    // The maker leaving takes nobody from the count; the wrong one leaving does.
    drop(maker);
    drop(wrong);
    common::eventually("one viewer now", || async {
        Ok(viewers(&server, &id).await?["now"] == 1)
    })
    .await?;
    flush_ledger(&server).await?;
    let counts = viewers(&server, &id).await?;
    assert_eq!(counts["peak"], 2, "{counts}");
    assert_eq!(counts["unique"], 1, "the ledger counts ana alone: {counts}");
    drop(ana);
    common::eventually("nobody now", || async {
        Ok(viewers(&server, &id).await?["now"] == 0)
    })
    .await?;
    server.stop().await
}
