//! Bad input gets a clear error (HTTP 4xx JSON or an `error` frame), never a panic or a hang.

use crate::common;

use std::time::Duration;

use anyhow::Result;
use common::{ADMIN, TestServer, drop_spec, far_script};
use dropwire_server::client_ip::TrustedProxies;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_refuses_bad_requests_in_the_error_shape() -> Result<()> {
    let server = TestServer::start().await?;
    let url = format!("{}/api/v1/drops", server.base);
    let spec = drop_spec("mugs-bad", 40, 1, far_script());

    let resp = server.http.post(&url).json(&spec).send().await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(code(&resp.json().await?), "unauthorized");
    let resp = server
        .http
        .post(&url)
        .bearer_auth("wrong-token-wrong-token")
        .json(&spec)
        .send()
        .await?;
    assert_eq!(resp.status(), 403);

    let resp = server
        .http
        .post(&url)
        .bearer_auth(ADMIN)
        .body("{\"title\": ")
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    assert_eq!(code(&resp.json().await?), "bad_json");

    let mut wrong_type = spec.clone();
    wrong_type["inventory"][0]["stock"] = json!("forty");
    let (status, body) = server.post("/api/v1/drops", wrong_type).await?;
    assert_eq!((status, code(&body)), (400, "bad_request"));
    assert_eq!(body["error"]["field"], "inventory[0].stock");

    let mut bad_script = spec.clone();
    bad_script["script"]["cues"][1]["sku"] = json!("vase");
    let (status, body) = server.post("/api/v1/drops", bad_script).await?;
    assert_eq!((status, code(&body)), (422, "invalid"));
    assert_eq!(body["error"]["field"], "script.cues[1].sku");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("unknown sku \"vase\""),
        "{body}"
    );

    let mut out_of_order = spec.clone();
    out_of_order["script"]["cues"][1]["at_s"] = json!(0);
    out_of_order["script"]["cues"][0]["at_s"] = json!(10);
    let (status, body) = server.post("/api/v1/drops", out_of_order).await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("script.cues[1].at_s"))
    );

    server.create(spec.clone()).await?;
    let (status, body) = server.post("/api/v1/drops", spec).await?;
    assert_eq!((status, code(&body)), (409, "already_exists"));

    let (status, body) = server.get("/api/v1/drops/nope").await?;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, _) = server.get("/api/v1/drops/NOT%20AN%20ID").await?;
    assert_eq!(status, 404);
    let (status, body) = server
        .post("/api/v1/claims/0000-0000-0000-0000/redeem", json!({}))
        .await?;
    assert_eq!((status, code(&body)), (404, "no_such_claim"));
    let (status, body) = server
        .post("/api/v1/drops/mugs-bad/fire", json!({"cue": "soon"}))
        .await?;
    assert_eq!((status, code(&body)), (400, "bad_request"));

    let huge = "x".repeat(2 << 20);
    // Its own client: the server answers 413 and closes that connection unread, which must
    // not be reused for the requests below.
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(ADMIN)
        .body(huge)
        .send()
        .await?;
    assert_eq!(resp.status(), 413);
    assert_eq!(code(&resp.json().await?), "too_large");

    let (status, body) = server
        .post("/api/v1/viewers", json!({"handle": "   "}))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("handle"))
    );

    let refused =
        tokio_tungstenite::connect_async(format!("{}/ws/v1/drops/nope", server.ws_base)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 404),
        other => panic!(
            "expected a 404 before the upgrade, got {:?}",
            other.map(|_| ())
        ),
    }
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_is_rate_limited_per_ip_but_not_for_the_admin() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.mints_per_minute = 3;
    let server = TestServer::with(opts).await?;
    let url = format!("{}/api/v1/viewers", server.base);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = server
            .http
            .post(&url)
            .json(&json!({"handle": "ana"}))
            .send()
            .await?;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            assert!(resp.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    server.mint("bulk").await?;
    server.stop().await
}

/// Mints `n` tokens without the admin token, each request saying it comes from another
/// client (`X-Forwarded-For: 198.51.x.y`); returns how many were granted.
async fn mint_as_many_clients(server: &TestServer, n: usize) -> Result<usize> {
    let url = format!("{}/api/v1/viewers", server.base);
    let mut granted = 0;
    let mut rest = (0..n).collect::<Vec<_>>();
    while !rest.is_empty() {
        let batch: Vec<usize> = rest.drain(..rest.len().min(64)).collect();
        let calls = batch.into_iter().map(|i| {
            let req = server
                .http
                .post(&url)
                .header("x-forwarded-for", format!("198.51.{}.{}", i / 250, i % 250))
                .json(&json!({"handle": format!("v{i}")}));
            async move { req.send().await.map(|r| r.status().as_u16()) }
        });
        for status in futures_util::future::join_all(calls).await {
            match status? {
                200 => granted += 1,
                429 => {}
                other => anyhow::bail!("mint answered {other}"),
            }
        }
    }
    Ok(granted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_viewer_is_its_own_client() -> Result<()> {
    // nginx in front: every request comes from the proxy's address (here 127.0.0.1), and
    // the viewer's own address is in X-Forwarded-For.
    let mut opts = common::memory_options()?;
    opts.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").map_err(anyhow::Error::msg)?;
    let server = TestServer::with(opts).await?;
    assert_eq!(mint_as_many_clients(&server, 10_000).await?, 10_000);
    server.stop().await?;

    // The same headers from a peer that is not a trusted proxy are ignored: it is one
    // client, and gets its 30 a minute.
    let mut opts = common::memory_options()?;
    opts.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").map_err(anyhow::Error::msg)?;
    let server = TestServer::with(opts).await?;
    assert_eq!(mint_as_many_clients(&server, 200).await?, 30);
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_connections_is_told_to_try_again_later() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.connections_per_client = 2;
    opts.connects_per_minute = 3;
    let server = TestServer::with(opts).await?;
    let id = server
        .create(drop_spec("mugs-gate", 5, 1, far_script()))
        .await?;
    let scrape = || async {
        let url = format!("{}/metrics", server.base);
        anyhow::Ok(server.http.get(url).send().await?.text().await?)
    };
    let open_now = |n: u64| {
        let scrape = &scrape;
        async move {
            let line = format!("dropwire_connections {n}\n");
            common::eventually("connections counted", || async {
                Ok(scrape().await?.contains(&line))
            })
            .await
        }
    };
    let mut first = server.watch_as(&id, "ana").await?;
    let _second = server.watch_as(&id, "bo").await?;
    // A third at once: accepted, then closed 1013 before anything else.
    let mut third = server.connect(&id).await?;
    assert_eq!(third.closed().await?, Some(1013));
    // One goes; the next comes in (the third connection this minute: a refused one does
    // not count).
    first.ws.close(None).await?;
    first.closed().await?;
    open_now(1).await?;
    let mut fourth = server.watch_as(&id, "cy").await?;
    fourth.ws.close(None).await?;
    fourth.closed().await?;
    open_now(1).await?;
    // The fourth this minute is over the rate, however few are open.
    let mut fifth = server.connect(&id).await?;
    assert_eq!(fifth.closed().await?, Some(1013));
    let metrics = scrape().await?;
    assert!(
        metrics.contains("dropwire_connection_refusals_total{reason=\"concurrent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dropwire_connection_refusals_total{reason=\"rate\"} 1"),
        "{metrics}"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_beyond_max_handshakes_are_told_to_come_back() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.max_handshakes = 1;
    let server = TestServer::with(opts).await?;
    let id = server
        .create(drop_spec("mugs-busy", 5, 1, far_script()))
        .await?;
    // One viewer upgraded and silent: its handshake is in progress until its hello.
    let mut first = server.connect(&id).await?;
    let url = format!("{}/ws/v1/drops/{id}", server.ws_base);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(resp.headers()["retry-after"], "1");
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default())?;
            assert_eq!(body["error"]["code"], "busy", "{body}");
        }
        other => anyhow::bail!("a join beyond the limit got {other:?}"),
    }
    first.send(json!({"type": "hello"})).await?;
    first.next_of("welcome").await?;
    first.next_of("snapshot").await?;
    // Joined: the next one may start (the slot is free once the catch-up is written).
    common::eventually("a handshake slot is free", || async {
        Ok(tokio_tungstenite::connect_async(url.as_str()).await.is_ok())
    })
    .await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_from_other_sites_may_not_open_viewer_sockets() -> Result<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut opts = common::memory_options()?;
    opts.allowed_origins = vec!["https://shop.example".into()];
    let server = TestServer::with(opts).await?;
    let id = server
        .create(drop_spec("mugs-origin", 5, 1, far_script()))
        .await?;
    let open = |origin: &'static str| {
        let mut req = format!("{}/ws/v1/drops/{id}", server.ws_base).into_client_request();
        if let Ok(r) = &mut req {
            r.headers_mut()
                .insert("origin", origin.parse().expect("header"));
        }
        async move { tokio_tungstenite::connect_async(req?).await }
    };
    match open("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default())?;
            assert_eq!(body["error"]["code"], "forbidden_origin", "{body}");
        }
        other => anyhow::bail!("a foreign origin got {other:?}"),
    }
    assert!(open("https://shop.example").await.is_ok());
    // Not a browser: no Origin at all.
    let mut v = server.connect(&id).await?;
    v.send(json!({"type": "hello"})).await?;
    v.next_of("welcome").await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_the_socket_stays_open() -> Result<()> {
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("mugs-frames", 40, 1, far_script()))
        .await?;
    let mut v = server.connect(&id).await?;
    v.send(json!({"type": "claim", "sku": "mug", "rid": "r1"}))
        .await?;
    assert_eq!(v.next_of("error").await?["code"], "hello_required");
    v.send(json!({"type": "hello", "token": "dw1.forged.token"}))
        .await?;
    assert_eq!(v.next_of("error").await?["code"], "bad_token");
    let welcome = v.next_of("welcome").await?;
    assert_eq!(welcome["viewer_id"], Value::Null);
    v.next_of("snapshot").await?;

    v.send_raw("{not json".into()).await?;
    assert_eq!(v.next_of("error").await?["code"], "bad_json");
    v.send(json!({"type": "dance"})).await?;
    assert_eq!(v.next_of("error").await?["code"], "unknown_type");
    v.send(json!({"type": "claim", "sku": 5})).await?;
    assert_eq!(v.next_of("error").await?["code"], "bad_frame");
    v.send(json!({"type": "ping", "ts": "x".repeat(17 * 1024)}))
        .await?;
    assert_eq!(v.next_of("error").await?["code"], "too_large");
    v.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await?;
    assert_eq!(v.next_of("error").await?["code"], "bad_json");
    v.send(json!({"type": "hello"})).await?;
    assert_eq!(v.next_of("error").await?["code"], "already_hello");
    v.send(json!({"type": "claim", "sku": "mug", "rid": "r1"}))
        .await?;
    assert_eq!(v.next_of("claim_result").await?["reason"], "unauthorized");

    tokio::time::sleep(Duration::from_secs(1)).await; // let the rate limiter refill
    v.send(json!({"type": "ping", "ts": 42})).await?;
    let pong = v.next_of("pong").await?;
    assert_eq!(pong["ts"], 42);
    assert!(pong["server_ms"].as_u64().is_some());
    server.stop().await
}

use futures_util::SinkExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_closed_and_a_flood_is_cut_off() -> Result<()> {
    let mut opts = common::memory_options()?;
    opts.hello_timeout = Duration::from_millis(300);
    let server = TestServer::with(opts).await?;
    let id = server
        .create(drop_spec("mugs-flood", 40, 1, far_script()))
        .await?;

    let mut silent = server.connect(&id).await?;
    assert_eq!(silent.next_of("error").await?["code"], "hello_timeout");
    assert_eq!(silent.closed().await?, Some(4408));
    server.stop().await?;

    // The flood on a server with the default hello timeout: on a loaded machine its hello
    // must not race a short one.
    let server = TestServer::start().await?;
    let id = server
        .create(drop_spec("mugs-flood", 40, 1, far_script()))
        .await?;

    let (mut flood, _) = server.join(&id, None, None).await?;
    flood.next_of("snapshot").await?;
    for i in 0..200 {
        if flood.send(json!({"type": "ping", "ts": i})).await.is_err() {
            break;
        }
    }
    let mut limited = 0;
    let code = loop {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        match tokio::time::timeout(common::PATIENCE, flood.ws.next()).await? {
            Some(Ok(Message::Text(t))) if t.contains("rate_limited") => limited += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert!(
        limited > 0,
        "the flood was told it is rate limited before being cut off"
    );
    assert_eq!(code, Some(4029));
    assert_eq!(server.state.metrics.flood_disconnects.get(), 1);
    server.stop().await
}
