//! Chat across two hub nodes on one real Redis: a message taken on one node reaches the
//! other's viewers in one `seq` order; settings, slow mode, mutes and deletes made through
//! one node hold on the other (they are control-log entries every node reads).

use crate::chat::{chat_with, say};
use crate::common;

use anyhow::Result;
use common::{ADMIN, TestServer, drop_spec, far_script};
use dropwire_server::clock::Clock;
use serde_json::{Value, json};

async fn put(server: &TestServer, path: &str, body: Value) -> Result<u16> {
    let resp = server
        .http
        .put(format!("{}{path}", server.base))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_its_moderation_hold_on_every_node() -> Result<()> {
    let _heavy = dropwire_store::testing::heavy().await;
    let redis = dropwire_store::testing::RedisServer::start();
    let a = common::redis_node(&redis, "a", Clock::System).await?;
    let b = common::redis_node(&redis, "b", Clock::System).await?;
    let id = a
        .create(drop_spec("chat-nodes", 5, 1, far_script()))
        .await?;
    let base = format!("/api/v1/drops/{id}/chat");
    let mut bo = a.watch_as(&id, "bo").await?;
    let mut ana = b.watch_as(&id, "ana").await?;

    // A message on node A reaches the viewer on node B, in the same frame and seq.
    let sent = say(&mut bo, "hello from A", "a1").await?;
    let msg_id = sent["id"].as_str().unwrap_or_default().to_owned();
    let at_b = chat_with(&mut ana, &msg_id).await?;
    let at_a = chat_with(&mut bo, &msg_id).await?;
    assert_eq!(at_a, at_b);
    assert_eq!(at_b["messages"][0]["author"], "bo");
    // Node B knows it from the broadcast: its snapshot shows it.
    let (_, snap) = b.get(&format!("/api/v1/drops/{id}")).await?;
    assert_eq!(
        snap["chat"]["recent"][0]["id"].as_str(),
        Some(msg_id.as_str())
    );

    // A node that loads the drop later knows the message from the broadcasts it reads.
    let c = common::redis_node(&redis, "c", Clock::System).await?;
    let (_, snap) = c.get(&format!("/api/v1/drops/{id}")).await?;
    assert_eq!(
        snap["chat"]["recent"][0]["id"].as_str(),
        Some(msg_id.as_str())
    );
    drop(c);

    // Slow mode set through node A holds on node B.
    assert_eq!(
        put(&a, &format!("{base}/settings"), json!({"slow_mode_s": 30})).await?,
        200
    );
    let settings = ana.next_of("chat_settings").await?;
    assert_eq!(settings["slow_mode_s"], 30);
    let first = say(&mut ana, "first", "b1").await?;
    assert_eq!(first["ok"], true);
    chat_with(&mut ana, first["id"].as_str().unwrap_or_default()).await?;
    let slow = say(&mut ana, "second", "b2").await?;
    assert_eq!(slow["reason"], "slow_mode", "{slow}");
    let wait = slow["retry_after_ms"].as_u64().unwrap_or(0);
    assert!((1..=30_000).contains(&wait), "{slow}");

    // A mute through node A holds on node B (seen once B has taken in the later settings).
    let (_, view) = b.get(&base).await?;
    let recent = view["recent"].as_array().cloned().unwrap_or_default();
    let ana_id = recent
        .iter()
        .find(|m| m["text"] == "first")
        .and_then(|m| m["viewer_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(!ana_id.is_empty(), "node B took ana's message: {view}");
    let (status, _) = a
        .post(
            &format!("{base}/mutes"),
            json!({"viewer_id": ana_id, "for_s": 600}),
        )
        .await?;
    assert_eq!(status, 201);
    assert_eq!(
        put(&a, &format!("{base}/settings"), json!({"slow_mode_s": 0})).await?,
        200
    );
    assert_eq!(ana.next_of("chat_settings").await?["slow_mode_s"], 0);
    let muted = say(&mut ana, "am I muted?", "b3").await?;
    assert_eq!(muted["reason"], "muted", "{muted}");
    let (_, view) = b.get(&base).await?;
    assert_eq!(
        view["mutes"][0]["viewer_id"].as_str(),
        Some(ana_id.as_str())
    );

    // A delete through node B reaches the viewer on node A.
    let resp = b
        .http
        .delete(format!("{}{base}/messages/{msg_id}", b.base))
        .bearer_auth(ADMIN)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 204);
    let gone = bo.next_of("chat_delete").await?;
    assert_eq!(gone["ids"], json!([msg_id]));
    let (_, snap) = a.get(&format!("/api/v1/drops/{id}")).await?;
    let ids: Vec<&str> = snap["chat"]["recent"]
        .as_array()
        .map(|r| r.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(!ids.contains(&msg_id.as_str()), "{ids:?}");
    Ok(())
}
