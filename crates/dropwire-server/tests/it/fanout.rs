//! Fan-out: many viewers, gapless order, resume with `since`, control actions, slow consumers
//! (closed 4008 after a gapless prefix, while the others get everything).

use crate::common;

use std::time::Duration;

use anyhow::Result;
use common::{TestServer, Viewer, drop_spec, far_script};
use futures_util::future::try_join_all;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_viewers_get_the_reveal_in_order_and_a_reconnect_gets_what_it_missed()
-> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("mugs-fanout", 40, 1, far_script()))
        .await?;
    let mut viewers: Vec<Viewer> = Vec::new();
    for _ in 0..200 {
        let (mut v, welcome) = server.join(&id, None, None).await?;
        assert_eq!(welcome["viewer_id"], serde_json::Value::Null);
        let snap = v.next_of("snapshot").await?;
        assert_eq!(snap["drop"]["state"], "scheduled");
        assert!(
            snap["drop"].get("obs_key").is_none(),
            "viewers never see the OBS key"
        );
        viewers.push(v);
    }
    // One viewer will drop out after the intro and come back later.
    let (mut leaver, _) = server.join(&id, None, None).await?;
    leaver.next_of("snapshot").await?;

    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    leaver.cue("intro").await?;
    let left_at = leaver.last_seq.expect("saw broadcasts");
    drop(leaver);

    server
        .ok(&format!("/api/v1/drops/{id}/fire"), json!({"cue": 1}))
        .await?;
    server
        .ok(
            &format!("/api/v1/drops/{id}/fire"),
            json!({"cue": {"type": "cta", "title": "Tap claim now"}}),
        )
        .await?;

    let received = try_join_all(viewers.iter_mut().map(|v| async move {
        let reveal = v.cue("reveal").await?;
        v.cue("cta").await?;
        anyhow::Ok(reveal)
    }))
    .await?;
    for reveal in &received {
        assert_eq!(reveal["index"], 1);
        assert_eq!(reveal["cue"]["sku"], "mug");
        assert_eq!(
            reveal["item"]["name"], "Speckled mug",
            "a reveal carries its product"
        );
    }
    // Every viewer saw the same broadcasts in the same order (Viewer::next fails on any gap).
    let first: Vec<_> = viewers[0]
        .seen
        .iter()
        .filter(|v| v["type"] != "viewers")
        .map(|v| v["seq"].clone())
        .collect();
    assert!(first.len() >= 4, "state, intro, reveal, cta: {first:?}");

    // The leaver resumes from where it left: exactly the broadcasts after `left_at`.
    let (mut back, welcome) = server.join(&id, None, Some(left_at)).await?;
    let now_seq = welcome["seq"].as_u64().expect("seq");
    back.last_seq = Some(left_at);
    let mut missed = Vec::new();
    while back.last_seq != Some(now_seq) {
        let frame = back.next().await?;
        assert_ne!(frame["type"], "snapshot", "history covers a short absence");
        missed.push(frame);
    }
    let expected: Vec<_> = (left_at + 1..=now_seq).collect();
    let got: Vec<_> = missed
        .iter()
        .map(|f| f["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(got, expected);
    assert!(
        missed
            .iter()
            .any(|f| f["type"] == "cue" && f["cue"]["type"] == "reveal")
    );
    assert!(
        missed
            .iter()
            .any(|f| f["type"] == "cue" && f["cue"]["type"] == "cta")
    );
    // A `since` the hub cannot serve (here: from another incarnation) gets a snapshot instead.
    let (mut stale, _) = server.join(&id, None, Some(1_000_000_000)).await?;
    let snap = stale.next().await?;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["drop"]["state"], "live");
    assert_eq!(snap["drop"]["fired"].as_array().map(Vec::len), Some(3));
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_fire_and_close_change_what_viewers_see() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("mugs-control", 40, 1, far_script()))
        .await?;
    let (mut v, _) = server.join(&id, None, None).await?;
    v.next_of("snapshot").await?;
    let path = |a: &str| format!("/api/v1/drops/{id}/{a}");

    let (status, body) = server.post(&path("pause"), json!({})).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("wrong_state"))
    );

    server.ok(&path("start"), json!({})).await?;
    v.state("live").await?;
    assert_eq!(v.cue("intro").await?["index"], 0);

    server.ok(&path("pause"), json!({})).await?;
    v.state("paused").await?;
    let (status, _) = server.post(&path("start"), json!({})).await?;
    assert_eq!(status, 409);

    // A reveal fired while paused shows, but claims stay shut until resume.
    server.ok(&path("fire"), json!({"cue": 1})).await?;
    v.cue("reveal").await?;
    let (status, body) = server.post(&path("fire"), json!({"cue": 1})).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_fired"))
    );
    let (status, body) = server.post(&path("fire"), json!({"cue": 9})).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("no_such_cue"))
    );

    server.ok(&path("resume"), json!({})).await?;
    v.state("live").await?;
    let coupon =
        json!({"cue": {"type": "flash_coupon", "code": "KILN10", "percent_off": 10, "ttl_s": 120}});
    server.ok(&path("fire"), coupon).await?;
    let c = v.cue("flash_coupon").await?;
    assert_eq!(
        (c["index"].clone(), c["cue"]["code"].clone()),
        (serde_json::Value::Null, json!("KILN10"))
    );

    let snapshot = server.ok(&path("close"), json!({})).await?;
    assert_eq!(snapshot["state"], "closed");
    v.state("closed").await?;
    let (status, _) = server.post(&path("resume"), json!({})).await?;
    assert_eq!(status, 409);

    // Everything the viewer saw, in order: nothing duplicated, nothing skipped.
    let kinds: Vec<String> = v
        .seen
        .iter()
        .filter(|f| f["type"] != "viewers")
        .map(|f| match f["type"].as_str() {
            Some("state") => format!("state:{}", f["state"].as_str().unwrap_or("")),
            Some("cue") => format!("cue:{}", f["cue"]["type"].as_str().unwrap_or("")),
            other => other.unwrap_or("").to_owned(),
        })
        .collect();
    let kinds: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| !k.starts_with("stock") && !k.starts_with("leaderboard"))
        .collect();
    assert_eq!(
        kinds,
        [
            "state:live",
            "cue:intro",
            "state:paused",
            "cue:reveal",
            "state:live",
            "cue:flash_coupon",
            "state:closed"
        ]
    );
    server.stop().await
}

/// A socket with a tiny receive buffer that is never read.
async fn stalled_viewer(
    server: &TestServer,
    drop: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let addr = server.base.trim_start_matches("http://").parse()?;
    let tcp = socket.connect(addr).await?;
    let (mut ws, _) =
        tokio_tungstenite::client_async(format!("{}/ws/v1/drops/{drop}", server.ws_base), tcp)
            .await?;
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"type": "hello"}).to_string(),
    ))
    .await?;
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_dropped_while_fifty_others_get_everything() -> Result<()> {
    let mut opts = common::memory_options()?;
    // The queue holds every cue of the test, so a healthy viewer that the loaded machine
    // schedules late is never dropped for lag; the stalled one is dropped when a write to
    // it has waited the send timeout.
    opts.viewer_queue = 512;
    opts.socket_send_buffer = 4096;
    opts.send_timeout = Duration::from_secs(3);
    let server = TestServer::with(opts).await?;
    let id = server
        .create(drop_spec("mugs-slow", 40, 1, far_script()))
        .await?;
    let mut viewers = Vec::new();
    for _ in 0..50 {
        let (mut v, _) = server.join(&id, None, None).await?;
        v.next_of("snapshot").await?;
        viewers.push(v);
    }
    let stalled = stalled_viewer(&server, &id).await?;
    // Once the server gives up on it, the stalled viewer reads again: what it was sent.
    let metrics = server.state.metrics.clone();
    let drained = tokio::spawn(async move {
        while metrics.slow_disconnects.get() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        read_to_close(stalled).await
    });
    server
        .ok(&format!("/api/v1/drops/{id}/start"), json!({}))
        .await?;
    const CUES: usize = 300;
    let title = "x".repeat(400);
    let readers = tokio::spawn(async move {
        try_join_all(viewers.iter_mut().map(|v| async move {
            let mut n = 0;
            while n < CUES {
                if v.cue("cta").await?["cue"]["title"]
                    .as_str()
                    .is_some_and(|t| t.len() == 400)
                {
                    n += 1;
                }
            }
            anyhow::Ok(n)
        }))
        .await
    });
    for _ in 0..CUES {
        server
            .ok(
                &format!("/api/v1/drops/{id}/fire"),
                json!({"cue": {"type": "cta", "title": title}}),
            )
            .await?;
    }
    let counts = readers.await??;
    assert_eq!(
        counts,
        vec![CUES; 50],
        "every healthy viewer got every cue, in order"
    );
    // The stalled one was dropped as slow (counted once), not buffered without bound.
    common::eventually("the stalled viewer is dropped as slow", || async {
        Ok(server.state.metrics.slow_disconnects.get() > 0)
    })
    .await?;
    assert_eq!(server.state.metrics.slow_disconnects.get(), 1);
    // It got a gapless prefix of the broadcasts, then the close frame: 4008, slow consumer.
    let (seqs, code) = tokio::time::timeout(Duration::from_secs(30), drained).await???;
    assert_eq!(code, Some(4008), "after {} broadcasts", seqs.len());
    assert!(
        seqs.len() < CUES,
        "it fell behind: {} broadcasts",
        seqs.len()
    );
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gap, no duplicate: {seqs:?}"
    );
    server.stop().await
}

/// Reads a socket to its close frame: the `seq` of each broadcast (from the snapshot's on),
/// and the close code.
async fn read_to_close(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> Result<(Vec<u64>, Option<u16>)> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut seqs = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await? {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t)?;
                if v["type"] == "snapshot" || v.get("ts").is_some() {
                    seqs.extend(v["seq"].as_u64());
                }
            }
            Some(Ok(Message::Close(frame))) => return Ok((seqs, frame.map(|f| f.code.into()))),
            Some(Ok(_)) => {}
            Some(Err(e)) => anyhow::bail!("after {} broadcasts: {e}", seqs.len()),
            None => anyhow::bail!("no close frame after {} broadcasts", seqs.len()),
        }
    }
}
