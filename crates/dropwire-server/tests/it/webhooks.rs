//! Webhooks against a real HTTP receiver: every delivery verified with the stock
//! `standardwebhooks` library; retries, `Retry-After`, `410 Gone`, dead letters, replay and
//! retry; bounded concurrency per endpoint; the SSRF guard; the follow-up confirmation and
//! coupon; the nurture schedule.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use common::hooks::{endpoint, hub, join_waitlist, until};
use common::receiver::{Receiver, Script};
use common::{ADMIN, TestServer};
use dropwire_server::webhooks::WebhookSettings;
use serde_json::{Value, json};
use standardwebhooks::Webhook;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_verifies_with_the_stock_library_also_across_a_rotation() -> Result<()> {
    let receiver = Receiver::start().await;
    let server = hub(&[0, 1, 1]).await?;
    let (id, secret) = endpoint(&server, &receiver.url("crm"), json!(["*"])).await?;
    let (_, listed) = server.get("/api/v1/webhooks").await?;
    assert!(
        listed.to_string().find("whsec_").is_none(),
        "the secret is shown once: {listed}"
    );

    let drop = server
        .create(common::drop_spec("signed", 5, 1, common::far_script()))
        .await?;
    join_waitlist(&server, &drop, "ana", json!({})).await?;
    let mut ana = server.watch_as(&drop, "bo").await?;
    server.start_and_reveal(&drop).await?;
    let granted = ana.claim("mug", "r1").await?;
    assert_eq!(granted["ok"], true);
    let wanted = [
        "drop.scheduled",
        "waitlist.joined",
        "viewer.attended",
        "drop.live",
        "claim.granted",
    ];
    until("the five events arrive", || {
        let got: HashSet<String> = receiver.log("crm").iter().map(|r| r.event()).collect();
        wanted.iter().all(|w| got.contains(*w))
    })
    .await?;
    let hook = Webhook::new(&secret)?;
    for r in receiver.log("crm") {
        hook.verify(&r.body, &r.headers)
            .map_err(|e| anyhow::anyhow!("{e:?} for {}", r.event()))?;
        assert!(r.id().starts_with("msg_"));
        let body = r.json();
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(body["data"]["kind"], body["type"]);
    }
    let claim = receiver
        .log("crm")
        .into_iter()
        .find(|r| r.event() == "claim.granted")
        .context("claim")?;
    assert_eq!(claim.json()["data"]["detail"]["code"], granted["code"]);
    let ids: Vec<String> = receiver
        .log("crm")
        .iter()
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "one id per message"
    );

    // Rotation: for 24 h both secrets sign, and each alone verifies.
    let rotated = server
        .ok(&format!("/api/v1/webhooks/{id}/rotate-secret"), json!({}))
        .await?;
    let new_secret = rotated["secret"].as_str().context("secret")?.to_owned();
    let before = receiver.log("crm").len();
    server
        .ok(&format!("/api/v1/drops/{drop}/close"), json!({}))
        .await?;
    until("the close arrives", || receiver.log("crm").len() > before).await?;
    let after = receiver.log("crm").pop().context("delivery")?;
    assert_eq!(
        after.headers["webhook-signature"]
            .to_str()?
            .split(' ')
            .count(),
        2
    );
    Webhook::new(&new_secret)?
        .verify(&after.body, &after.headers)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    hook.verify(&after.body, &after.headers)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let forged = Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
    assert!(forged.verify(&after.body, &after.headers).is_err());
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_honour_retry_after_go_dead_and_come_back_by_retry_and_replay() -> Result<()>
{
    let receiver = Receiver::start().await;
    let server = hub(&[0, 1, 1]).await?;
    receiver.script(
        "down",
        Script {
            then: 500,
            ..Default::default()
        },
    );
    receiver.script(
        "busy",
        Script {
            first: [(429, Some("2"))].into(),
            then: 200,
            ..Default::default()
        },
    );
    receiver.script(
        "moved",
        Script {
            first: [(302, None)].into(),
            then: 200,
            ..Default::default()
        },
    );
    receiver.script(
        "gone",
        Script {
            then: 410,
            ..Default::default()
        },
    );
    let mut ids = Vec::new();
    for path in ["down", "busy", "moved", "gone"] {
        ids.push(
            endpoint(&server, &receiver.url(path), json!(["waitlist.joined"]))
                .await?
                .0,
        );
    }
    let (down, busy, moved, gone) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let drop = server
        .create(common::drop_spec("retries", 5, 1, common::far_script()))
        .await?;
    join_waitlist(&server, &drop, "ana", json!({})).await?;

    // 500 three times (the schedule's three tries), then the dead letter list.
    until("three tries to the failing endpoint", || {
        receiver.log("down").len() == 3
    })
    .await?;
    let dead = deliveries(&server, down, "dead").await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let tries: Vec<u64> = dead[0]["tries"]
        .as_array()
        .context("tries")?
        .iter()
        .filter_map(|t| t["status"].as_u64())
        .collect();
    assert_eq!(tries, [500, 500, 500]);
    let log = receiver.log("down");
    assert!(
        log.iter().all(|r| r.id() == log[0].id()),
        "the same webhook-id on every try"
    );
    assert!(
        log[1].at - log[0].at >= Duration::from_millis(900),
        "backoff: {:?}",
        log[1].at - log[0].at
    );

    // 429 with Retry-After: 2 → the next try waits at least 2 s, then succeeds.
    until("the busy endpoint takes it", || {
        receiver.log("busy").len() == 2
    })
    .await?;
    let busy_log = receiver.log("busy");
    assert!(busy_log[1].at - busy_log[0].at >= Duration::from_millis(1900));
    assert_eq!(deliveries(&server, busy, "delivered").await?.len(), 1);

    // A redirect is not followed: it is a failure, and the next try lands.
    until("the moved endpoint takes it", || {
        receiver.log("moved").len() == 2
    })
    .await?;
    assert_eq!(deliveries(&server, moved, "delivered").await?.len(), 1);

    // 410 Gone disables the endpoint (and says so with endpoint.disabled).
    until("410 disables", || receiver.log("gone").len() == 1).await?;
    common::eventually("the endpoint shows disabled", || async {
        Ok(server.get(&format!("/api/v1/webhooks/{gone}")).await?.1["enabled"] == false)
    })
    .await?;
    let (_, ep) = server.get(&format!("/api/v1/webhooks/{gone}")).await?;
    assert_eq!(ep["disabled_reason"], "the endpoint answered 410 Gone");
    let (_, facts) = server
        .get("/api/v1/ledger/facts?kind=endpoint.disabled")
        .await?;
    assert_eq!(facts["facts"][0]["detail"]["endpoint_id"], gone.as_str());
    join_waitlist(&server, &drop, "bo", json!({})).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.log("gone").len(),
        1,
        "nothing more goes to a disabled endpoint"
    );

    // The failing endpoint recovers: retry its dead letter, and replay everything to another.
    receiver.script(
        "down",
        Script {
            then: 200,
            ..Default::default()
        },
    );
    let msg = dead[0]["msg_id"].as_str().context("msg_id")?;
    server
        .ok(
            &format!("/api/v1/webhooks/{down}/deliveries/{msg}/retry"),
            json!({}),
        )
        .await?;
    until("the retried message lands", || {
        receiver.log("down").iter().skip(3).any(|r| r.id() == msg)
    })
    .await?;
    let replayed = server
        .ok(
            &format!("/api/v1/webhooks/{busy}/replay"),
            json!({"since": 0}),
        )
        .await?;
    assert_eq!(replayed["requeued"], 2);
    until("the replay lands", || receiver.log("busy").len() >= 4).await?;
    let busy_ids: HashSet<String> = receiver
        .log("busy")
        .iter()
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(busy_ids.len(), 2, "replays keep their ids");
    let (status, _) = server
        .post(
            &format!("/api/v1/webhooks/{busy}/deliveries/msg_nope/retry"),
            json!({}),
        )
        .await?;
    assert_eq!(status, 404);
    server.stop().await
}

async fn deliveries(server: &TestServer, id: &str, state: &str) -> Result<Vec<Value>> {
    let (_, body) = server
        .get(&format!("/api/v1/webhooks/{id}/deliveries?state={state}"))
        .await?;
    Ok(body["deliveries"].as_array().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_too_long_is_disabled() -> Result<()> {
    let receiver = Receiver::start().await;
    let mut opts = common::memory_options()?;
    // Every second a try, for ever; five days of failure shortened to two seconds.
    opts.webhooks = WebhookSettings {
        schedule: vec![Duration::from_secs(1); 20],
        timeout: Duration::from_secs(2),
        allow_private: true,
        disable_after: Duration::from_secs(2),
        ..WebhookSettings::default()
    };
    let server = TestServer::with_ledger(opts).await?;
    receiver.script(
        "flaky",
        Script {
            then: 503,
            ..Default::default()
        },
    );
    let (id, _) = endpoint(&server, &receiver.url("flaky"), json!(["waitlist.joined"])).await?;
    let drop = server
        .create(common::drop_spec("flaky", 5, 1, common::far_script()))
        .await?;
    join_waitlist(&server, &drop, "ana", json!({})).await?;
    common::eventually("the endpoint is disabled", || async {
        Ok(server.get(&format!("/api/v1/webhooks/{id}")).await?.1["enabled"] == false)
    })
    .await?;
    let (_, ep) = server.get(&format!("/api/v1/webhooks/{id}")).await?;
    assert_eq!(ep["disabled_reason"], "every delivery failed for 2 s");
    assert!(ep["failing_since_ms"].as_u64().is_some());
    let tries = receiver.log("flaky").len();
    assert!(tries >= 3, "it kept trying until then ({tries})");
    // Re-enabled by the maker, it gets the message again once it answers.
    receiver.script(
        "flaky",
        Script {
            then: 200,
            ..Default::default()
        },
    );
    let resp = server
        .http
        .patch(format!("{}/api/v1/webhooks/{id}", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({"enabled": true}))
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    until("delivered after re-enabling", || {
        receiver.log("flaky").len() > tries
    })
    .await?;
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_a_bounded_number_of_requests_at_once() -> Result<()> {
    let receiver = Receiver::start().await;
    let server = hub(&[0, 1]).await?;
    receiver.script(
        "slow",
        Script {
            then: 200,
            delay: Duration::from_millis(400),
            ..Default::default()
        },
    );
    endpoint(&server, &receiver.url("slow"), json!(["waitlist.joined"])).await?;
    let drop = server
        .create(common::drop_spec("slow", 5, 1, common::far_script()))
        .await?;
    for i in 0..10 {
        join_waitlist(&server, &drop, &format!("v{i}"), json!({})).await?;
    }
    until("ten deliveries", || receiver.log("slow").len() == 10).await?;
    assert_eq!(
        receiver.most_in_flight("slow"),
        2,
        "the concurrency bound, reached and kept"
    );
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_reach_this_machine_or_its_network_are_refused() -> Result<()> {
    let server = TestServer::start().await?;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
    ] {
        let (status, body) = server
            .post("/api/v1/webhooks", json!({"url": url, "events": ["*"]}))
            .await?;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("url_refused")),
            "{url}: {body}"
        );
        assert_eq!(body["error"]["field"], "url");
    }
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["claim.stolen"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "events",
        ),
    ] {
        let (status, answer) = server.post("/api/v1/webhooks", body.clone()).await?;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (422, Some(field)),
            "{body} → {answer}"
        );
    }
    let (status, answer) = server.get("/api/v1/webhooks/ep_nope").await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("no_such_endpoint"))
    );
    server.stop().await
}
