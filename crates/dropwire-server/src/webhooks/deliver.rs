//! The delivery worker: every quarter second, for each endpoint with due messages and room
//! under its concurrency bound, lease that many and send each in a task of its own; a task
//! whose message was delivered leases the endpoint's next one at once, so a healthy
//! endpoint is fed as fast as it answers, a failing one at most a try per slot per round.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dropwire_funnel::{Leased, Ledger, Outcome};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{WebhookSettings, sign, ssrf};
use crate::app::AppState;

const TICK: Duration = Duration::from_millis(250);
/// Delivered and dead messages are kept this long (the deliveries list, replays), then pruned.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a leased message is this node's before another node may take it: four request
/// timeouts (60 s by default), so only a dead node's work is taken over.
fn lease(settings: &WebhookSettings) -> Duration {
    (settings.timeout * 4).max(Duration::from_secs(5))
}

/// Runs until shutdown (a no-op without a ledger).
pub(crate) async fn deliver_forever(state: AppState, settings: WebhookSettings) {
    let Some(funnel) = state.funnel.clone() else {
        return;
    };
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(ssrf::resolver(settings.allow_private))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks stay queued");
            return;
        }
    };
    let worker = Arc::new(Worker {
        state: state.clone(),
        ledger: funnel.ledger,
        client,
        settings,
        slots: Mutex::new(HashMap::new()),
    });
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = Arc::clone(&worker).round().await {
            tracing::warn!(error = %e, "webhook round failed; will retry");
        }
        ticks += 1;
        if ticks % 14_400 == 1 {
            // Once an hour (and at start): forget what finished over 30 days ago.
            let before = state.clock.now_ms().saturating_sub(KEEP.as_millis() as u64);
            match worker.ledger.prune_outbox(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(messages = n, "webhook outbox pruned"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the webhook outbox"),
            }
        }
        if ticks % 20 == 1
            && let Ok((pending, dead)) = worker.ledger.outbox_counts().await
        {
            state.metrics.webhook_backlog.set(pending as i64);
            state.metrics.webhook_dead.set(dead as i64);
        }
    }
}

struct Worker {
    state: AppState,
    ledger: Ledger,
    client: reqwest::Client,
    settings: WebhookSettings,
    /// Per endpoint, the deliveries it may have in flight.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Worker {
    fn slots(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut slots = crate::sync::lock(&self.slots);
        Arc::clone(
            slots
                .entry(endpoint.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.concurrency))),
        )
    }

    async fn round(self: Arc<Self>) -> Result<(), dropwire_funnel::FunnelError> {
        let now = self.state.clock.now_ms();
        for (endpoint, _) in self.ledger.due_endpoints(now).await? {
            let slots = self.slots(&endpoint);
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let lease_until = now + lease(&self.settings).as_millis() as u64;
            let leased = self
                .ledger
                .lease_due(&endpoint, free as u32, now, lease_until)
                .await?;
            for msg in leased {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    break; // the lease runs out and the message is taken again
                };
                tokio::spawn(Arc::clone(&self).drain(msg, permit));
            }
        }
        Ok(())
    }

    /// Holding one of an endpoint's slots: sends `msg`, then leases the endpoint's next due
    /// message, one at a time (so no lease waits behind a slow request), until none is due.
    async fn drain(self: Arc<Self>, mut msg: Leased, _permit: OwnedSemaphorePermit) {
        loop {
            let endpoint = msg.endpoint_id.clone();
            if !self.send(msg).await {
                return;
            }
            let now = self.state.clock.now_ms();
            let until = now + lease(&self.settings).as_millis() as u64;
            match self.ledger.lease_due(&endpoint, 1, now, until).await {
                Ok(mut next) if !next.is_empty() => msg = next.remove(0),
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot lease the next webhook message");
                    return;
                }
            }
        }
    }

    /// One attempt at one message; `true` when it was delivered (the slot may take the
    /// endpoint's next message at once).
    async fn send(&self, msg: Leased) -> bool {
        let now = self.state.clock.now_ms();
        let target = match self.ledger.target(&msg.endpoint_id, now).await {
            Ok(Some(t)) if t.enabled => t,
            Ok(_) => return false, // deleted or disabled since: its messages wait or went with it
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a webhook endpoint");
                return false;
            }
        };
        let body = json!({
            "type": msg.fact.fact.kind.as_str(),
            "timestamp": rfc3339(msg.fact.fact.at_ms),
            "data": &msg.fact,
        })
        .to_string();
        let started = Instant::now();
        let sent = self
            .post(&target.url, &target.secrets, &msg.msg_id, &body)
            .await;
        let latency = started.elapsed();
        self.state
            .metrics
            .webhook_seconds
            .observe(latency.as_secs_f64());
        let at = self.state.clock.now_ms();
        let outcome = self.outcome(&msg, sent, at);
        let label = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { .. } => "failed",
            Outcome::Dead { .. } => "dead",
        };
        self.state
            .metrics
            .webhook_deliveries
            .with_label_values(&[label])
            .inc();
        if let Err(e) = self
            .ledger
            .finish(&msg, &outcome, at, latency.as_millis() as u64)
            .await
        {
            tracing::warn!(error = %e, msg = %msg.msg_id, "cannot record a webhook attempt");
            return false;
        }
        let gone = matches!(
            outcome,
            Outcome::Dead {
                status: Some(410),
                ..
            }
        );
        let failing_too_long = !matches!(outcome, Outcome::Delivered { .. })
            && target.failing_since_ms.is_some_and(|since| {
                at.saturating_sub(since) >= self.settings.disable_after.as_millis() as u64
            });
        if gone || failing_too_long {
            let reason = if gone {
                "the endpoint answered 410 Gone".to_owned()
            } else {
                let s = self.settings.disable_after.as_secs();
                let span = if s >= 3600 {
                    format!("{} h", s / 3600)
                } else {
                    format!("{s} s")
                };
                format!("every delivery failed for {span}")
            };
            match self
                .ledger
                .disable_endpoint(&msg.endpoint_id, &reason, at)
                .await
            {
                Ok(true) => {
                    tracing::warn!(endpoint = %msg.endpoint_id, %reason, "webhook endpoint disabled")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot disable a webhook endpoint"),
            }
        }
        // A failing endpoint is not hammered: its next messages wait for the next round.
        matches!(outcome, Outcome::Delivered { .. })
    }

    async fn post(
        &self,
        url: &str,
        secrets: &[String],
        msg_id: &str,
        body: &str,
    ) -> Result<(StatusCode, HeaderMap), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        if !ssrf::literal_allowed(&parsed, self.settings.allow_private) {
            return Err("the URL's address is private or metadata; refused".into());
        }
        let ts = self.state.clock.now_ms() / 1000;
        let keys: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let resp = self
            .client
            .post(parsed)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("dropwire-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign::header(&keys, msg_id, ts, body))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        Ok((resp.status(), resp.headers().clone()))
    }

    /// What an attempt's result means for the message.
    fn outcome(
        &self,
        msg: &Leased,
        sent: Result<(StatusCode, HeaderMap), String>,
        at: u64,
    ) -> Outcome {
        let tries = msg.attempts as usize + 1;
        let (status, error, asked_wait) = match sent {
            Ok((status, _)) if status.is_success() => {
                return Outcome::Delivered {
                    status: status.as_u16(),
                };
            }
            Ok((StatusCode::GONE, _)) => {
                return Outcome::Dead {
                    status: Some(410),
                    error: "410 Gone: the endpoint is disabled".into(),
                };
            }
            Ok((status, headers)) => {
                let wait = matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
                .then(|| retry_after(&headers, at))
                .flatten();
                (Some(status.as_u16()), format!("answered {status}"), wait)
            }
            Err(e) => (None, e, None),
        };
        let Some(next_wait) = self.settings.schedule.get(tries) else {
            return Outcome::Dead { status, error };
        };
        let wait = asked_wait.unwrap_or_else(|| jitter(*next_wait));
        Outcome::Retry {
            status,
            error,
            next_ms: at + wait.as_millis() as u64,
        }
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
fn retry_after(headers: &HeaderMap, now_ms: u64) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs = match raw.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let at =
                time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc2822)
                    .ok()?;
            let at_ms = u64::try_from(at.unix_timestamp()).ok()? * 1000;
            at_ms.saturating_sub(now_ms) / 1000
        }
    };
    Some(Duration::from_secs(secs.min(24 * 3600)))
}

/// A wait spread by ±10 %, so endpoints recovering together are not hit together.
fn jitter(wait: Duration) -> Duration {
    let r: [u8; 2] = dropwire_store::random_bytes().unwrap_or([0, 0]);
    let unit = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX); // 0..=1
    wait.mul_f64(0.9 + 0.2 * unit)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

fn rfc3339(ms: u64) -> String {
    dropwire_core::StartsAt(ms).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, 0), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        let now = 1_445_412_470_000; // ten seconds before
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, 0), None);
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(100));
            assert!((90..=110).contains(&j.as_secs()), "{j:?}");
        }
    }
}
