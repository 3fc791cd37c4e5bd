//! Helpers of the webhook and follow-up tests: a hub whose webhooks may reach this machine,
//! endpoints, waiting on the receiver, viewers on a waitlist.

use std::time::Duration;

use anyhow::{Context, Result};
use dropwire_server::webhooks::WebhookSettings;
use serde_json::{Value, json};

use super::TestServer;

/// A hub whose webhooks may reach this machine, retried after 1 s and 1 s (three tries).
pub async fn hub(schedule_s: &[u64]) -> Result<TestServer> {
    let mut opts = super::memory_options()?;
    opts.webhooks = WebhookSettings {
        schedule: schedule_s
            .iter()
            .copied()
            .map(Duration::from_secs)
            .collect(),
        timeout: Duration::from_secs(2),
        concurrency: 2,
        allow_private: true,
        ..WebhookSettings::default()
    };
    TestServer::with_ledger(opts).await
}

pub async fn endpoint(server: &TestServer, url: &str, events: Value) -> Result<(String, String)> {
    let created = server
        .ok(
            "/api/v1/webhooks",
            json!({"url": url, "events": events, "description": "test CRM"}),
        )
        .await?;
    let id = created["id"].as_str().context("id")?.to_owned();
    let secret = created["secret"].as_str().context("secret")?.to_owned();
    assert!(secret.starts_with("whsec_"));
    Ok((id, secret))
}

pub async fn until<F: Fn() -> bool>(what: &str, done: F) -> Result<()> {
    super::eventually(what, || {
        let ok = done();
        async move { Ok(ok) }
    })
    .await
}

pub async fn join_waitlist(
    server: &TestServer,
    drop: &str,
    handle: &str,
    body: Value,
) -> Result<String> {
    let token = server.mint(handle).await?;
    let resp = server
        .http
        .post(format!("{}/api/v1/drops/{drop}/waitlist", server.base))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "join: {}", resp.status());
    Ok(token)
}
