//! Chat over real sockets: a message reaches every viewer in one sequenced `chat` frame
//! with the author's handle (never its viewer id); refusals (anonymous, empty, too long,
//! rate) go to the sender alone; a resumed viewer gets the chat it missed. Time-bound rules
//! (the coalescing tick, the rate) run on tokio's paused clock at the hub, never on
//! waiting. The host's moderation: `chat_moderation`; across nodes: `chat_nodes`; keyword
//! quests: `chat_quests`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use common::{TestServer, Viewer, drop_spec, far_script};
use dropwire_core::DropSpec;
use dropwire_core::protocol::ServerMsg;
use dropwire_server::AppState;
use dropwire_server::auth::Viewer as Who;
use dropwire_server::clock::Clock;
use dropwire_server::hub::{CHAT_TICK, DropHub};
use serde_json::{Value, json};

pub async fn say(v: &mut Viewer, text: &str, rid: &str) -> Result<Value> {
    v.send(json!({"type": "chat", "text": text, "rid": rid}))
        .await?;
    v.next_of("chat_result").await
}

/// Reads `chat` frames until one holds a message with `id`; returns that frame.
pub async fn chat_with(v: &mut Viewer, id: &str) -> Result<Value> {
    loop {
        let frame = v.next_of("chat").await?;
        let msgs = frame["messages"].as_array().cloned().unwrap_or_default();
        if msgs.iter().any(|m| m["id"] == id) {
            return Ok(frame);
        }
    }
}

pub fn reason(v: &Value) -> (Option<bool>, Option<&str>) {
    (v["ok"].as_bool(), v["reason"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_viewer_with_the_handle_not_the_viewer_id() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-send", 5, 1, far_script()))
        .await?;
    let mut ana = server.watch_as(&id, "ana").await?;
    let mut bo = server.watch_as(&id, "bo").await?;
    let (mut anon, _) = server.join(&id, None, None).await?;

    let ok = say(&mut ana, "  hello mugs!  ", "c1").await?;
    assert_eq!(ok["ok"], true, "{ok}");
    let msg_id = ok["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(msg_id.len(), 16);
    // The same rid again: the same answer, nothing sent twice.
    assert_eq!(say(&mut ana, "hello mugs!", "c1").await?, ok);

    let at_ana = chat_with(&mut ana, &msg_id).await?;
    let at_bo = chat_with(&mut bo, &msg_id).await?;
    let at_anon = chat_with(&mut anon, &msg_id).await?;
    assert_eq!(at_ana, at_bo);
    assert_eq!(at_ana, at_anon);
    let messages = at_ana["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 1, "{at_ana}");
    let m = &messages[0];
    assert_eq!(
        (
            m["author"].as_str(),
            m["text"].as_str(),
            m["host"].as_bool()
        ),
        (Some("ana"), Some("hello mugs!"), Some(false))
    );
    assert!(
        m.get("viewer_id").is_none(),
        "no viewer id in a broadcast: {m}"
    );
    assert!(m["at_ms"].as_u64().is_some());
    let keys: Vec<&str> = at_ana
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 4, "type, seq, ts, messages: {at_ana}");

    // Refusals, to the sender alone.
    assert_eq!(
        reason(&say(&mut anon, "hi", "a1").await?),
        (Some(false), Some("unauthorized"))
    );
    assert_eq!(
        reason(&say(&mut bo, " \n ", "b1").await?),
        (Some(false), Some("empty"))
    );
    let long = "é".repeat(281);
    assert_eq!(
        reason(&say(&mut bo, &long, "b2").await?),
        (Some(false), Some("too_long"))
    );
    let exact = "é".repeat(280);
    assert_eq!(say(&mut bo, &exact, "b3").await?["ok"], true);
    let bad_rid = {
        bo.send(json!({"type": "chat", "text": "x", "rid": ""}))
            .await?;
        bo.next_of("error").await?
    };
    assert_eq!(bad_rid["code"], "bad_frame");

    // A late viewer's snapshot holds the latest messages, oldest first.
    let token = server.mint("cy").await?;
    let (mut cy, _) = server.join(&id, Some(&token), None).await?;
    let snap = loop {
        let s = cy.next_of("snapshot").await?;
        if s["drop"]["chat"]["recent"].as_array().map(Vec::len) == Some(2) {
            break s;
        }
        drop(cy);
        (cy, _) = server.join(&id, Some(&token), None).await?;
    };
    let chat = &snap["drop"]["chat"];
    assert_eq!(
        (chat["enabled"].as_bool(), chat["slow_mode_s"].as_u64()),
        (Some(true), Some(0))
    );
    assert!(chat["pinned"].is_null());
    assert_eq!(chat["recent"][0]["text"], "hello mugs!");
    assert_eq!(chat["recent"][1]["text"].as_str(), Some(exact.as_str()));
    server.stop().await
}

/// A hub on tokio's paused clock, its drop created in the store.
pub async fn paused_hub(id: &str, cues: Value) -> Result<(AppState, Arc<DropHub>)> {
    let mut opts = common::memory_options()?;
    opts.clock = Clock::tokio_anchored();
    let state = AppState::start(opts).await?;
    let spec: DropSpec = serde_json::from_value(drop_spec(id, 5, 1, cues))?;
    let hub = common::hub_of(&state, id, spec).await?;
    Ok((state, hub))
}

pub fn who(name: &str) -> Who {
    Who {
        id: format!("v-{name}"),
        handle: name.into(),
    }
}

/// The answer's `(ok, reason, retry_after_ms)`.
pub fn answer(msg: &ServerMsg) -> (bool, Option<&str>, Option<u64>) {
    match msg {
        ServerMsg::ChatResult {
            ok,
            reason,
            retry_after_ms,
            ..
        } => (*ok, reason.as_deref(), *retry_after_ms),
        other => panic!("not a chat_result: {other:?}"),
    }
}

/// The broadcasts a hub delivered since `rx` joined, parsed.
pub fn drain(rx: &mut tokio::sync::broadcast::Receiver<dropwire_server::hub::Frame>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(f) = rx.try_recv() {
        out.push(serde_json::from_str(f.text.as_str()).unwrap_or(Value::Null));
    }
    out
}

/// Lets the hub's task run its due timers after the paused clock moved.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn messages_are_coalesced_into_one_frame_per_tick() -> Result<()> {
    let (_state, hub) = paused_hub("chat-tick", far_script()).await?;
    let mut rx = hub.subscribe();
    for (i, name) in ["ana", "bo", "cy", "di"].into_iter().enumerate() {
        let a = hub.chat(Some(&who(name)), false, &format!("m{i}"), format!("r{i}"));
        assert_eq!(answer(&a), (true, None, None));
    }
    settle().await;
    assert_eq!(
        drain(&mut rx),
        Vec::<Value>::new(),
        "nothing before the tick"
    );
    tokio::time::advance(CHAT_TICK).await;
    settle().await;
    let frames = drain(&mut rx);
    let chats: Vec<&Value> = frames.iter().filter(|f| f["type"] == "chat").collect();
    if chats.len() != 1 {
        bail!("one chat frame per tick, got {frames:?}");
    }
    let texts: Vec<&str> = chats[0]["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, ["m0", "m1", "m2", "m3"]);
    // An empty tick sends nothing.
    tokio::time::advance(CHAT_TICK * 5).await;
    settle().await;
    assert!(drain(&mut rx).iter().all(|f| f["type"] != "chat"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_viewer_is_rate_limited_after_its_burst_and_refills_with_time() -> Result<()> {
    let (_state, hub) = paused_hub("chat-rate", far_script()).await?;
    let ana = who("ana");
    // 20 a minute, a burst of 5: five at once, the sixth waits 3 s.
    for i in 0..5 {
        let a = hub.chat(Some(&ana), false, "hi", format!("r{i}"));
        assert_eq!(answer(&a), (true, None, None), "message {i}");
    }
    let sixth = hub.chat(Some(&ana), false, "hi", "r5".into());
    assert_eq!(answer(&sixth), (false, Some("rate_limited"), Some(3000)));
    // Another viewer is not held back.
    let bo = hub.chat(Some(&who("bo")), false, "hi", "b".into());
    assert_eq!(answer(&bo), (true, None, None));
    tokio::time::advance(Duration::from_millis(2999)).await;
    let early = hub.chat(Some(&ana), false, "hi", "r6".into());
    assert_eq!(answer(&early), (false, Some("rate_limited"), Some(1)));
    tokio::time::advance(Duration::from_millis(1)).await;
    let on_time = hub.chat(Some(&ana), false, "hi", "r7".into());
    assert_eq!(answer(&on_time), (true, None, None));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_resuming_with_since_gets_the_chat_frames_it_missed() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("chat-resume", 5, 1, far_script()))
        .await?;
    let token = server.mint("ana").await?;
    let (mut ana, welcome) = server.join(&id, Some(&token), None).await?;
    ana.next_of("snapshot").await?;
    let since = welcome["seq"].as_u64().unwrap_or(0);
    drop(ana);
    let mut bo = server.watch_as(&id, "bo").await?;
    let mut sent = Vec::new();
    for i in 0..3 {
        let r = say(
            &mut bo,
            &format!("while you were away {i}"),
            &format!("r{i}"),
        )
        .await?;
        let msg_id = r["id"].as_str().unwrap_or_default().to_owned();
        chat_with(&mut bo, &msg_id).await?;
        sent.push(msg_id);
    }
    let (mut back, _) = server.join(&id, Some(&token), Some(since)).await?;
    back.last_seq = Some(since);
    let mut got = Vec::new();
    while got.len() < 3 {
        let f = back.next().await?;
        assert_ne!(f["type"], "snapshot", "resumed, not a snapshot");
        if f["type"] == "chat" {
            for m in f["messages"].as_array().cloned().unwrap_or_default() {
                got.push(m["id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(got, sent);
    server.stop().await
}
