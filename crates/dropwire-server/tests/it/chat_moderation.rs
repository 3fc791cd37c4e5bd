//! The host's moderation over real sockets and HTTP: blocked words, bans, deletes, the
//! pin, chat off; slow mode and a mute's end on tokio's paused clock at the hub; the
//! moderation surviving a restart; the maker's own connection chatting as the host.

use crate::chat::{answer, chat_with, paused_hub, reason, say, who};
use crate::common;

use std::time::Duration;

use anyhow::Result;
use common::{TestServer, drop_spec, far_script};
use serde_json::{Value, json};

async fn put(server: &TestServer, path: &str, body: Value) -> Result<(u16, Value)> {
    let resp = server
        .http
        .put(format!("{}{path}", server.base))
        .bearer_auth(common::ADMIN)
        .json(&body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn delete(server: &TestServer, path: &str) -> Result<u16> {
    let resp = server
        .http
        .delete(format!("{}{path}", server.base))
        .bearer_auth(common::ADMIN)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_moderates_bans_blocks_deletes_and_pins() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-mod", 5, 1, far_script()))
        .await?;
    let base = format!("/api/v1/drops/{id}/chat");
    let mut ana = server.watch_as(&id, "ana").await?;
    let mut bo = server.watch_as(&id, "bo").await?;

    // Blocked words: whole word, any case; the sender gets blocked_word, nothing goes out.
    let (status, settings) = put(
        &server,
        &format!("{base}/settings"),
        json!({"blocked_words": ["Spam"]}),
    )
    .await?;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings,
        json!({"enabled": true, "slow_mode_s": 0, "blocked_words": ["spam"]})
    );
    let frame = bo.next_of("chat_settings").await?;
    assert_eq!(
        (frame["enabled"].as_bool(), frame["slow_mode_s"].as_u64()),
        (Some(true), Some(0))
    );
    assert!(frame.get("blocked_words").is_none());
    assert_eq!(
        reason(&say(&mut ana, "buy SPAM now", "s1").await?),
        (Some(false), Some("blocked_word"))
    );
    let fine = say(&mut ana, "spammy is fine", "s2").await?;
    assert_eq!(fine["ok"], true);
    let fine_id = fine["id"].as_str().unwrap_or_default().to_owned();
    let frame = chat_with(&mut bo, &fine_id).await?;
    assert_eq!(frame["messages"].as_array().map(Vec::len), Some(1));

    // The maker's view shows the author's viewer id.
    let (_, view) = server.get(&base).await?;
    let ana_viewer = view["recent"][0]["viewer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!ana_viewer.is_empty(), "{view}");
    assert_eq!(view["blocked_words"], json!(["spam"]));

    // A ban: banned until lifted; then the viewer chats again.
    let (status, mute) = server
        .post(
            &format!("{base}/mutes"),
            json!({"viewer_id": ana_viewer, "ban": true}),
        )
        .await?;
    assert_eq!(status, 201, "{mute}");
    assert_eq!(
        mute,
        json!({"viewer_id": ana_viewer, "until_ms": null, "ban": true})
    );
    assert_eq!(
        reason(&say(&mut ana, "let me talk", "s3").await?),
        (Some(false), Some("banned"))
    );
    let (_, view) = server.get(&base).await?;
    assert_eq!(
        view["mutes"],
        json!([{"viewer_id": ana_viewer, "until_ms": null, "ban": true}])
    );
    assert_eq!(
        delete(&server, &format!("{base}/mutes/{ana_viewer}")).await?,
        204
    );
    assert_eq!(say(&mut ana, "thanks", "s4").await?["ok"], true);
    let (_, view) = server.get(&base).await?;
    assert_eq!(view["mutes"], json!([]));

    // Bad moderation input: a clear 422 `invalid` naming the field, or 400 for a body that
    // is not the route's.
    for (path, body, want, field) in [
        (
            format!("{base}/settings"),
            json!({"slow_mode_s": 3601}),
            422,
            "slow_mode_s",
        ),
        (
            format!("{base}/settings"),
            json!({"blocked_words": [" "]}),
            422,
            "blocked_words",
        ),
        (
            format!("{base}/settings"),
            json!({"colour": "red"}),
            400,
            "",
        ),
    ] {
        let (status, err) = put(&server, &path, body).await?;
        assert_eq!(status, want, "{err}");
        assert!(err["error"]["code"].is_string());
        if want == 422 {
            assert_eq!(err["error"]["field"], field, "{err}");
        }
    }
    let (status, _) = server
        .post(
            &format!("{base}/mutes"),
            json!({"viewer_id": "v", "for_s": 0}),
        )
        .await?;
    assert_eq!(status, 422);
    let (status, _) = server.post(&base, json!({"text": "  "})).await?;
    assert_eq!(status, 422);

    // A host message, pinned: host:true in the chat frame, then chat_pin.
    let (status, host) = server
        .post(&base, json!({"text": "Mugs at 8!", "pin": true}))
        .await?;
    assert_eq!(status, 201, "{host}");
    assert_eq!(
        (host["host"].as_bool(), host["author"].as_str()),
        (Some(true), Some("host"))
    );
    let host_id = host["id"].as_str().unwrap_or_default().to_owned();
    let pin = bo.next_of("chat_pin").await?;
    assert_eq!(pin["message"]["id"].as_str(), Some(host_id.as_str()));
    let frame = chat_with(&mut bo, &host_id).await?;
    let sent = frame["messages"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["id"] == host_id.as_str()).cloned())
        .unwrap_or_default();
    assert_eq!(sent["host"], true);

    // Delete a viewer's message: chat_delete to everyone; snapshots leave it out.
    assert_eq!(
        delete(&server, &format!("{base}/messages/{fine_id}")).await?,
        204
    );
    let gone = bo.next_of("chat_delete").await?;
    assert_eq!(gone["ids"], json!([fine_id]));
    assert_eq!(
        delete(&server, &format!("{base}/messages/{fine_id}")).await?,
        404
    );
    assert_eq!(
        delete(&server, &format!("{base}/messages/nope")).await?,
        404
    );
    let (_, snap) = server.get(&format!("/api/v1/drops/{id}")).await?;
    let texts: Vec<&str> = snap["chat"]["recent"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, ["thanks", "Mugs at 8!"]);
    assert_eq!(
        snap["chat"]["pinned"]["id"].as_str(),
        Some(host_id.as_str())
    );

    // Unpin; pin an unknown message: 404.
    let (status, body) = put(&server, &format!("{base}/pin"), json!({"message_id": null})).await?;
    assert_eq!((status, body), (200, json!({"pinned": null})));
    assert!(bo.next_of("chat_pin").await?["message"].is_null());
    let (status, _) = put(
        &server,
        &format!("{base}/pin"),
        json!({"message_id": "nope"}),
    )
    .await?;
    assert_eq!(status, 404);

    // Chat off: chat_off to viewers; on again.
    put(
        &server,
        &format!("{base}/settings"),
        json!({"enabled": false}),
    )
    .await?;
    assert_eq!(bo.next_of("chat_settings").await?["enabled"], false);
    assert_eq!(
        reason(&say(&mut bo, "hello?", "o1").await?),
        (Some(false), Some("chat_off"))
    );
    put(
        &server,
        &format!("{base}/settings"),
        json!({"enabled": true}),
    )
    .await?;
    assert_eq!(say(&mut bo, "hello!", "o2").await?["ok"], true);

    // A closed drop: viewers hear chat_off, the host's message 422; moderation goes on.
    server
        .ok(&format!("/api/v1/drops/{id}/close"), json!({}))
        .await?;
    bo.state("closed").await?;
    assert_eq!(
        reason(&say(&mut bo, "still here?", "z1").await?),
        (Some(false), Some("chat_off"))
    );
    let (status, _) = server.post(&base, json!({"text": "bye"})).await?;
    assert_eq!(status, 422);
    let (status, _) = put(
        &server,
        &format!("{base}/settings"),
        json!({"slow_mode_s": 5}),
    )
    .await?;
    assert_eq!(status, 200);
    server.stop().await
}

#[tokio::test(start_paused = true)]
async fn slow_mode_and_a_mute_end_on_the_hubs_clock() -> Result<()> {
    let (_state, hub) = paused_hub("chat-slow", far_script()).await?;
    let ana = who("ana");
    hub.chat_settings(None, Some(10), None).await?;
    assert_eq!(
        answer(&hub.chat(Some(&ana), false, "one", "r1".into())),
        (true, None, None)
    );
    tokio::time::advance(Duration::from_millis(4_000)).await;
    assert_eq!(
        answer(&hub.chat(Some(&ana), false, "two", "r2".into())),
        (false, Some("slow_mode"), Some(6_000))
    );
    // Slow mode is per viewer.
    assert_eq!(
        answer(&hub.chat(Some(&who("bo")), false, "hi", "b".into())),
        (true, None, None)
    );
    tokio::time::advance(Duration::from_millis(6_000)).await;
    assert_eq!(
        answer(&hub.chat(Some(&ana), false, "two", "r3".into())),
        (true, None, None)
    );
    hub.chat_settings(None, Some(0), None).await?;

    // A 30 s mute: muted with the time left, then free one millisecond after its end.
    hub.mute("v-bo", Some(30), false).await?;
    tokio::time::advance(Duration::from_millis(10_000)).await;
    assert_eq!(
        answer(&hub.chat(Some(&who("bo")), false, "hey", "m1".into())),
        (false, Some("muted"), Some(20_000))
    );
    tokio::time::advance(Duration::from_millis(19_999)).await;
    assert_eq!(
        answer(&hub.chat(Some(&who("bo")), false, "hey", "m2".into())),
        (false, Some("muted"), Some(1))
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        answer(&hub.chat(Some(&who("bo")), false, "hey", "m3".into())),
        (true, None, None)
    );
    // The maker's own connection chats as the host, past slow mode and mutes.
    hub.chat_settings(Some(false), Some(60), None).await?;
    let host = hub.chat(None, true, "welcome", "h1".into());
    assert_eq!(answer(&host), (true, None, None));
    Ok(())
}

/// Moderation is in the journaled control log: a restarted hub keeps the settings, the
/// mute and the pin (message text is not durable: the latest messages start empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_survives_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = TestServer::on_dir(dir.path()).await?;
    let id = server
        .create(drop_spec("chat-restart", 5, 1, far_script()))
        .await?;
    let base = format!("/api/v1/drops/{id}/chat");
    let (status, _) = put(
        &server,
        &format!("{base}/settings"),
        json!({"slow_mode_s": 15, "blocked_words": ["drat"]}),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            &format!("{base}/mutes"),
            json!({"viewer_id": "v-someone", "ban": true}),
        )
        .await?;
    assert_eq!(status, 201);
    let (_, host) = server
        .post(&base, json!({"text": "pinned note", "pin": true}))
        .await?;
    server.stop().await?;

    let server = TestServer::on_dir(dir.path()).await?;
    let (status, view) = server.get(&base).await?;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["slow_mode_s"].as_u64(), view["blocked_words"].clone()),
        (Some(15), json!(["drat"]))
    );
    assert_eq!(
        view["mutes"],
        json!([{"viewer_id": "v-someone", "until_ms": null, "ban": true}])
    );
    assert_eq!(view["pinned"]["id"], host["id"]);
    assert_eq!(view["pinned"]["text"], "pinned note");
    // And the timeline is untouched by those entries.
    let (_, drop) = server.get(&format!("/api/v1/drops/{id}")).await?;
    assert_eq!(drop["state"], "scheduled");
    server.stop().await
}

/// The maker's own connection (a hello with `admin`) chats as the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_makers_connection_chats_as_the_host() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-maker", 5, 1, far_script()))
        .await?;
    let mut bo = server.watch_as(&id, "bo").await?;
    let mut panel = server.connect(&id).await?;
    panel
        .send(json!({"type": "hello", "admin": common::ADMIN}))
        .await?;
    assert_eq!(panel.next_of("welcome").await?["maker"], true);
    panel.next_of("snapshot").await?;
    let ok = say(&mut panel, "hello from the studio", "p1").await?;
    assert_eq!(ok["ok"], true, "{ok}");
    let msg_id = ok["id"].as_str().unwrap_or_default().to_owned();
    let frame = chat_with(&mut bo, &msg_id).await?;
    let m = &frame["messages"][0];
    assert_eq!(
        (m["author"].as_str(), m["host"].as_bool()),
        (Some("host"), Some(true))
    );
    server.stop().await
}
