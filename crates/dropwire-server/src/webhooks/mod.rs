//! Webhooks to the maker's CRM (the Standard Webhooks specification), and the nurture
//! timers, as the hub runs them. The messages themselves are the ledger's outbox, written
//! with the facts they announce (`dropwire_funnel`); here a worker on every node leases due
//! messages, signs and sends them, and records what happened.
//!
//! # Layout
//!
//! - [`sign`]: `webhook-signature`, and new `whsec_` secrets.
//! - [`ssrf`]: the guard against URLs that reach this machine or its private network.
//! - `deliver`: the delivery worker (leases, bounded concurrency per endpoint, retries with
//!   backoff and jitter, `Retry-After`, `410 Gone`, disabling after days of failure).
//! - `nurture`: the worker that fires due nurture timers.

mod deliver;
mod nurture;
pub mod sign;
pub(crate) mod ssrf;

use std::time::Duration;

pub(crate) use deliver::deliver_forever;
pub(crate) use nurture::nurture_forever;

/// How deliveries are made. [`WebhookSettings::default`] is `dropwire serve`'s.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Waits before each attempt: the first is the wait before the first try (usually 0);
    /// a message gets as many tries as there are entries, then goes to the dead letters.
    pub schedule: Vec<Duration>,
    /// The longest one request may take.
    pub timeout: Duration,
    /// Deliveries in flight per endpoint at most.
    pub concurrency: usize,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// Let URLs reach loopback and private addresses (tests, or a CRM on the same network).
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let s = Duration::from_secs;
        WebhookSettings {
            schedule: vec![
                s(0),
                s(5),
                s(300),
                s(1800),
                s(7200),
                s(18_000),
                s(36_000),
                s(36_000),
            ],
            timeout: s(15),
            concurrency: 4,
            disable_after: s(5 * 24 * 3600),
            allow_private: false,
        }
    }
}

/// Parses a schedule written as seconds separated by commas (`0,5,300`).
pub(crate) fn parse_schedule(raw: &str) -> Result<Vec<Duration>, String> {
    let steps: Result<Vec<u64>, _> = raw.split(',').map(|s| s.trim().parse::<u64>()).collect();
    let steps =
        steps.map_err(|_| format!("{raw:?} is not seconds separated by commas (0,5,300)"))?;
    if steps.is_empty() || steps.len() > 20 {
        return Err("needs 1-20 waits".into());
    }
    if steps.iter().any(|s| *s > 7 * 24 * 3600) {
        return Err("a wait of at most 7 days".into());
    }
    Ok(steps.into_iter().map(Duration::from_secs).collect())
}
