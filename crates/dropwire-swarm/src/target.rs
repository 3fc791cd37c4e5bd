//! The control side of a run, over the HTTP API of `API.md`: create the drop, start it,
//! fire cues, close it, read its stats, mint viewer tokens. The reference broadcaster
//! answers the same paths, so one code path drives both.

use std::time::Duration;

use anyhow::{Context, bail};
use dropwire_core::{Cue, CueType, DropKind, DropSpec, InventoryItem, Script};
use serde::Deserialize;
use serde_json::{Value, json};

/// The SKU every swarm drop sells.
pub const SKU: &str = "swarm-item";
/// The script index of the reveal the swarm fires by hand.
pub const REVEAL_CUE: usize = 1;

#[derive(Debug, Clone)]
pub struct Target {
    base: String,
    admin_token: String,
    http: reqwest::Client,
}

/// What `GET …/stats` says about the claims.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimStats {
    pub viewers_now: u64,
    pub stock_left: Option<u64>,
    /// Held plus redeemed: the units granted and not returned.
    pub granted: u64,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    floor: bool,
}

impl Target {
    pub fn new(base: &str, admin_token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(128)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Target {
            base: base.trim_end_matches('/').to_owned(),
            admin_token: admin_token.to_owned(),
            http,
        })
    }

    pub fn ws_url(&self, drop_id: &str) -> String {
        let rest = self
            .base
            .strip_prefix("http://")
            .or_else(|| self.base.strip_prefix("ws://"))
            .unwrap_or(&self.base);
        format!("ws://{rest}/ws/v1/drops/{drop_id}")
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}: no answer"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{method} {url}: {status}: {}",
                text.chars().take(400).collect::<String>()
            );
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {url}: answer is not JSON"))
    }

    /// Creates the swarm's drop; returns its id and whether the server is the floor.
    ///
    /// The script's reveal and close sit at the end of an hour; the swarm fires the reveal by
    /// index once its viewers are connected, and closes the drop when done.
    pub async fn create_drop(
        &self,
        id: &str,
        stock: u32,
        fair_start_ms: u32,
    ) -> anyhow::Result<(String, bool)> {
        let mut intro = Cue::new(0, CueType::Intro);
        intro.title = Some("dropwire-swarm is connecting its viewers".into());
        let mut reveal = Cue::new(3590, CueType::Reveal);
        reveal.sku = Some(SKU.into());
        reveal.title = Some("The swarm's item".into());
        let spec = DropSpec {
            id: Some(id.to_owned()),
            title: format!("swarm {id}"),
            kind: DropKind::Demo,
            currency: "EUR".into(),
            hold_s: 3600,
            inventory: vec![InventoryItem {
                sku: SKU.into(),
                name: "Swarm test item".into(),
                price_cents: 1000,
                stock,
                per_viewer_limit: 1,
                image_url: None,
                fair_start_ms,
                variants: Vec::new(),
            }],
            script: Script {
                duration_s: 3600,
                cues: vec![intro, reveal, Cue::new(3600, CueType::Close)],
            },
            starts_at: None,
            auto_start: false,
            early_access_s: 0,
            follow_up: None,
            nurture: None,
        };
        let body = serde_json::to_value(&spec)?;
        let created: Created = serde_json::from_value(
            self.call(reqwest::Method::POST, "/api/v1/drops", Some(body))
                .await?,
        )
        .context("the created drop has no id")?;
        Ok((created.id, created.floor))
    }

    pub async fn start(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/drops/{id}/start"),
            None,
        )
        .await
        .map(drop)
    }

    pub async fn close(&self, id: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/drops/{id}/close"),
            None,
        )
        .await
        .map(drop)
    }

    /// Fires the ad-hoc `cta` cue the viewers time (`n` only labels it).
    pub async fn fire_bench(&self, id: &str, n: usize) -> anyhow::Result<()> {
        let mut cue = Cue::new(0, CueType::Cta);
        cue.title = Some(format!("swarm broadcast {n}: tap to follow the studio"));
        let body = json!({ "cue": cue });
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/drops/{id}/fire"),
            Some(body),
        )
        .await
        .map(drop)
    }

    pub async fn fire_reveal(&self, id: &str) -> anyhow::Result<()> {
        let body = json!({ "cue": REVEAL_CUE });
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/drops/{id}/fire"),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// Polls until the drop exists (for processes that join another's drop).
    pub async fn wait_for_drop(&self, id: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/drops/{id}/stats"),
                    None,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("drop {id} did not appear")));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    pub async fn stats(&self, id: &str) -> anyhow::Result<ClaimStats> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/drops/{id}/stats"),
                None,
            )
            .await?;
        let n = |p: &str| v.pointer(p).and_then(Value::as_u64);
        let stock_left = v
            .get("stock")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("sku").and_then(Value::as_str) == Some(SKU))
            })
            .and_then(|i| i.get("left").and_then(Value::as_u64));
        Ok(ClaimStats {
            viewers_now: n("/viewers/now").unwrap_or(0),
            stock_left,
            granted: n("/claims/held").unwrap_or(0) + n("/claims/redeemed").unwrap_or(0),
        })
    }

    /// A viewer token; the admin bearer lifts the per-address rate limit.
    pub async fn mint(&self, handle: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/api/v1/viewers",
                Some(json!({ "handle": handle })),
            )
            .await?;
        v.get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("POST /api/v1/viewers answered without a token")
    }
}
