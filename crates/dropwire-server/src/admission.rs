//! Who may open a viewer WebSocket. Browsers: the page's origin must be the hub's own or on
//! `--allowed-origins` (when that list is set; clients that send no `Origin` are not
//! browsers and pass). Every client — its address, through trusted proxies — may open
//! `--connects-per-minute` connections a minute and hold `--connections-per-client` at once;
//! past either, the socket is accepted and closed at once with 1013 (try again later), so a
//! browser's client sees the reason, and the refusal costs no more than the handshake.
//! And the whole hub lets `--max-handshakes` connections be between their upgrade request
//! and their welcome at once: in a reconnect storm the rest get 503 `busy` with
//! `Retry-After` before the upgrade, and come back as the first ones are served.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

/// The connection gate of one hub.
#[derive(Debug)]
pub struct Admission {
    origins: Vec<String>,
    per_client: u32,
    rate: DefaultKeyedRateLimiter<IpAddr>,
    open: Mutex<HashMap<IpAddr, u32>>,
    max_handshakes: usize,
    handshakes: AtomicUsize,
}

/// A connection between its upgrade request and its welcome.
#[derive(Debug)]
pub struct Handshake(Arc<Admission>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection was refused after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More new connections this minute than `--connects-per-minute`.
    Rate,
    /// More open connections than `--connections-per-client`.
    Concurrent,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Rate => "rate",
            Refusal::Concurrent => "concurrent",
        }
    }
}

/// One admitted connection: its client's count goes down when it is dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    client: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = crate::sync::lock(&self.admission.open);
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// `https://Shop.example/` → `https://shop.example` (origins compare without case or slash).
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Parses `--allowed-origins`: `https://shop.example,http://localhost:3000`.
pub fn parse_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| format!("{origin:?} is not an origin like https://shop.example"))?;
        if rest.is_empty() || rest.trim_end_matches('/').contains('/') {
            return Err(format!(
                "{origin:?} is not an origin like https://shop.example"
            ));
        }
        out.push(normalize(origin));
    }
    Ok(out)
}

impl Admission {
    pub fn new(origins: Vec<String>, per_client: u32, per_minute: u32) -> Arc<Admission> {
        Admission::with_handshakes(origins, per_client, per_minute, usize::MAX)
    }

    pub fn with_handshakes(
        origins: Vec<String>,
        per_client: u32,
        per_minute: u32,
        max_handshakes: usize,
    ) -> Arc<Admission> {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Arc::new(Admission {
            origins,
            per_client: per_client.max(1),
            rate: RateLimiter::keyed(Quota::per_minute(per_minute)),
            open: Mutex::new(HashMap::new()),
            max_handshakes: max_handshakes.max(1),
            handshakes: AtomicUsize::new(0),
        })
    }

    /// Counts a handshake in progress, unless `--max-handshakes` are already.
    pub fn begin_handshake(self: &Arc<Self>) -> Option<Handshake> {
        let taken = self
            .handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_handshakes).then_some(n + 1)
            });
        taken.ok().map(|_| Handshake(Arc::clone(self)))
    }

    /// 403 `forbidden_origin` for a browser page on another site than the hub's own or the
    /// allowed ones.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), AppError> {
        if self.origins.is_empty() {
            return Ok(());
        }
        let Some(origin) = headers.get("origin") else {
            return Ok(());
        };
        let origin = normalize(origin.to_str().unwrap_or_default());
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(|h| h.to_ascii_lowercase());
        let own = host.is_some_and(|h| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                == Some(h.as_str())
        });
        if own || self.origins.contains(&origin) {
            return Ok(());
        }
        Err(AppError::ForbiddenOrigin(origin))
    }

    /// Counts a new connection of `client`, or says why it may not have one now.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Ticket, Refusal> {
        let mut open = crate::sync::lock(&self.open);
        let n = open.entry(client).or_insert(0);
        if *n >= self.per_client {
            return Err(Refusal::Concurrent);
        }
        if self.rate.check_key(&client).is_err() {
            if *n == 0 {
                open.remove(&client);
            }
            return Err(Refusal::Rate);
        }
        *n += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            client,
        })
    }

    /// Forgets the rate state of clients quiet for a while (called every minute).
    pub fn retain_recent(&self) {
        self.rate.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn open_connections_are_counted_per_client_and_given_back() {
        let gate = Admission::new(Vec::new(), 2, 1000);
        let a = gate.admit(ip("192.0.2.1")).unwrap();
        let _b = gate.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            gate.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::Concurrent
        );
        let _other = gate.admit(ip("192.0.2.2")).unwrap();
        drop(a);
        assert!(gate.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn handshakes_in_progress_are_bounded() {
        let gate = Admission::with_handshakes(Vec::new(), 10, 10, 2);
        let a = gate.begin_handshake().unwrap();
        let _b = gate.begin_handshake().unwrap();
        assert!(gate.begin_handshake().is_none());
        drop(a);
        assert!(gate.begin_handshake().is_some());
    }

    #[test]
    fn new_connections_are_rated_per_client() {
        let gate = Admission::new(Vec::new(), 1000, 3);
        let tickets: Vec<_> = (0..3)
            .map(|_| gate.admit(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(gate.admit(ip("192.0.2.1")).unwrap_err(), Refusal::Rate);
        drop(tickets);
        assert_eq!(
            gate.admit(ip("192.0.2.1")).unwrap_err(),
            Refusal::Rate,
            "closing does not refill the rate"
        );
        assert!(
            gate.open.lock().unwrap().is_empty(),
            "a refused client holds no entry"
        );
    }

    #[test]
    fn browsers_from_other_sites_are_refused_when_a_list_is_set() {
        let headers = |origin: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert("host", HeaderValue::from_static("hub.example:8080"));
            if let Some(o) = origin {
                h.insert("origin", HeaderValue::from_static(o));
            }
            h
        };
        let open = Admission::new(Vec::new(), 10, 10);
        assert!(
            open.check_origin(&headers(Some("https://evil.example")))
                .is_ok()
        );
        let gate = Admission::new(
            parse_origins("https://Shop.example/, http://localhost:3000").unwrap(),
            10,
            10,
        );
        assert!(
            gate.check_origin(&headers(Some("https://shop.example")))
                .is_ok()
        );
        assert!(
            gate.check_origin(&headers(Some("http://localhost:3000")))
                .is_ok()
        );
        assert!(
            gate.check_origin(&headers(Some("http://hub.example:8080")))
                .is_ok(),
            "the hub's own pages"
        );
        assert!(
            gate.check_origin(&headers(None)).is_ok(),
            "no Origin: not a browser"
        );
        assert!(
            gate.check_origin(&headers(Some("https://evil.example")))
                .is_err()
        );
        assert!(gate.check_origin(&headers(Some("null"))).is_err());
        assert!(parse_origins("shop.example").is_err());
        assert!(parse_origins("https://shop.example/path").is_err());
    }
}
