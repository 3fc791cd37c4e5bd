//! What both floors share: the few HTTP API paths the swarm drives (hand-parsed HTTP/1.1,
//! one request per connection), the one stock counter that answers claims, and the frames
//! a floor builds. The floors differ only in how a published frame reaches the sockets, so
//! the routes call [`Broadcast::publish`] and leave the delivery to the floor.
//!
//! Paths: `POST /api/v1/drops` (→ `{"id", "floor": true}`; keeps the first inventory item),
//! `POST …/{id}/start` (no-op), `POST …/{id}/fire` with `{"cue": {…ad-hoc cue…}}` or
//! `{"cue": N}` (any index: a reveal of the kept item), `POST …/{id}/close` (a `state`
//! `closed` broadcast), `GET …/{id}/stats`, `POST /api/v1/viewers` (a dummy token),
//! `GET /healthz`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use dropwire_core::protocol::{ClientMsg, NextCue, ServerMsg};
use dropwire_core::{Cue, CueType, DropSpec, DropState, FireTarget, InventoryItem};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest HTTP request head or body the control side reads.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Broadcasts a socket may fall behind before it is dropped (as dropwire's default queue).
pub const QUEUE: usize = 256;

static NEXT_VIEWER: AtomicU64 = AtomicU64::new(1);

pub fn now_ms() -> u64 {
    crate::viewer::now_us() / 1000
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when a request head (up to its blank line) asks for a WebSocket upgrade: a viewer.
pub fn is_upgrade(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.starts_with("get ") && head.contains("upgrade: websocket")
}

/// The value of header `name` (lower case, without the colon) in a request head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// One control request, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads a request from the bytes received so far: `Ok(None)` while it is incomplete, an
/// error when its head or body is larger than [`MAX_REQUEST`].
pub fn parse_request(buf: &[u8]) -> anyhow::Result<Option<Request>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        anyhow::ensure!(buf.len() <= MAX_REQUEST, "request head too large");
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let length = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    anyhow::ensure!(length <= MAX_REQUEST, "request body too large");
    let body_at = end + 4;
    if buf.len() < body_at + length {
        return Ok(None);
    }
    let mut words = head.split_whitespace();
    Ok(Some(Request {
        method: words.next().unwrap_or("").to_owned(),
        path: words.next().unwrap_or("").to_owned(),
        body: buf[body_at..body_at + length].to_vec(),
    }))
}

/// The drop's one item and its stock: what answers claims, from one atomic counter (no
/// store, no journal, no limits): the floor of a claim's round trip.
#[derive(Debug, Default)]
pub struct Stock {
    /// The item of the last created drop, revealed by any script-index fire.
    item: Mutex<Option<InventoryItem>>,
    left: AtomicU64,
    granted: AtomicU64,
}

impl Stock {
    fn reset(&self, item: Option<InventoryItem>) {
        self.left.store(
            item.as_ref().map_or(0, |i| u64::from(i.stock)),
            Ordering::Release,
        );
        self.granted.store(0, Ordering::Release);
        *super::lock(&self.item) = item;
    }

    fn item(&self) -> Option<InventoryItem> {
        super::lock(&self.item).clone()
    }

    /// Answers a `claim` frame with a `claim_result`; other frames get no answer.
    pub fn claim(&self, text: &str) -> Option<String> {
        let Ok(ClientMsg::Claim { sku, rid }) = ClientMsg::parse(text) else {
            return None;
        };
        let took = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let now = now_ms();
        let n = self.granted.fetch_add(u64::from(took), Ordering::AcqRel);
        let msg = ServerMsg::ClaimResult {
            rid,
            ok: took,
            code: took.then(|| format!("FLOOR-{n:06}")),
            sku: took.then_some(sku),
            hold_until_ms: took.then_some(now + 900_000),
            reason: (!took).then(|| "sold_out".to_owned()),
            opens_at_ms: None,
            follow_up: None,
        };
        serde_json::to_string(&msg).ok()
    }

    fn stats(&self, viewers: u64) -> Value {
        let sku = self.item().map(|i| i.sku);
        json!({
            "viewers": { "now": viewers },
            "claims": { "held": self.granted.load(Ordering::Acquire), "redeemed": 0, "expired": 0 },
            "stock": sku.map(|sku| vec![json!({ "sku": sku, "left": self.left.load(Ordering::Acquire) })]).unwrap_or_default(),
        })
    }
}

/// How a floor hands a frame to every viewer.
pub trait Broadcast {
    /// Serializes `msg(seq, ts)` once (the next seq, the time now) and sends the same bytes
    /// to every viewer; returns the seq.
    fn publish(&mut self, msg: impl FnOnce(u64, u64) -> ServerMsg) -> anyhow::Result<u64>;
    /// Viewers welcomed and still connected.
    fn viewers(&self) -> u64;
    fn stock(&self) -> &Stock;
}

/// The `welcome` a viewer gets after its `hello`: broadcasts after `seq` follow.
pub fn welcome(seq: u64) -> ServerMsg {
    ServerMsg::Welcome {
        viewer_id: None,
        handle: None,
        server_ms: now_ms(),
        seq,
        maker: false,
    }
}

#[derive(Deserialize)]
struct FireBody {
    cue: FireTarget,
}

/// Answers one control request; returns the whole HTTP response.
pub fn respond(floor: &mut impl Broadcast, req: &Request) -> anyhow::Result<Vec<u8>> {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (status, answer) = match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["api", "v1", "drops"]) => {
            let spec = serde_json::from_slice::<DropSpec>(&req.body).ok();
            let id = spec
                .as_ref()
                .and_then(|s| s.id.clone())
                .unwrap_or_else(|| "floor".into());
            floor
                .stock()
                .reset(spec.and_then(|s| s.inventory.into_iter().next()));
            ("201 Created", json!({ "id": id, "floor": true }))
        }
        ("POST", ["api", "v1", "viewers"]) => {
            let n = NEXT_VIEWER.fetch_add(1, Ordering::Relaxed);
            (
                "201 Created",
                json!({ "viewer_id": format!("floor-{n}"), "token": "floor", "handle": "floor" }),
            )
        }
        ("POST", ["api", "v1", "drops", _, "start"]) => ("200 OK", json!({ "state": "live" })),
        ("POST", ["api", "v1", "drops", _, "fire"]) => fire(floor, &req.body)?,
        ("POST", ["api", "v1", "drops", _, "close"]) => {
            let seq = floor.publish(|seq, ts| ServerMsg::State {
                seq,
                ts,
                state: DropState::Closed,
                elapsed_s: 0.0,
                next_cue: None,
            })?;
            ("200 OK", json!({ "seq": seq }))
        }
        ("GET", ["api", "v1", "drops", _, "stats"]) => {
            ("200 OK", floor.stock().stats(floor.viewers()))
        }
        ("GET", ["healthz"]) => ("200 OK", json!({ "ok": true })),
        _ => (
            "404 Not Found",
            json!({"error": {"code": "not_found", "message": "the floor answers only the swarm's few paths"}}),
        ),
    };
    let body = answer.to_string();
    Ok(format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes())
}

fn fire(floor: &mut impl Broadcast, body: &[u8]) -> anyhow::Result<(&'static str, Value)> {
    let seq = match serde_json::from_slice::<FireBody>(body) {
        Ok(FireBody {
            cue: FireTarget::AdHoc(cue),
        }) => floor.publish(|seq, ts| ServerMsg::Cue {
            seq,
            ts,
            index: None,
            cue: *cue,
            at_ms: ts,
            item: None,
            public_ms: None,
            // As dropwire's frames for the swarm's drop carry (its reveal is due later), so
            // both send frames of the same size.
            next_cue: Some(NextCue {
                index: crate::target::REVEAL_CUE,
                kind: CueType::Reveal,
                at_ms: ts + 3_590_000,
            }),
        })?,
        Ok(FireBody {
            cue: FireTarget::Script(index),
        }) => {
            let item = floor.stock().item();
            let mut cue = Cue::new(0, CueType::Reveal);
            cue.sku = item.as_ref().map(|i| i.sku.clone());
            cue.title = Some("The swarm's item".into());
            floor.publish(|seq, ts| ServerMsg::Cue {
                seq,
                ts,
                index: Some(index),
                cue,
                at_ms: ts,
                item: item.map(Box::new),
                public_ms: None,
                next_cue: None,
            })?
        }
        Err(_) => {
            return Ok((
                "400 Bad Request",
                json!({"error": {"code": "bad_cue", "message": "fire {\"cue\": N} or {\"cue\": {\"type\": \"cta\", …}}"}}),
            ));
        }
    };
    Ok(("200 OK", json!({ "seq": seq })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_once_whole() {
        let req = b"POST /api/v1/drops/x/fire HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{\"cue\":1}";
        for cut in 0..req.len() {
            assert_eq!(parse_request(&req[..cut]).unwrap(), None, "cut at {cut}");
        }
        let r = parse_request(req).unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.body.as_slice()),
            ("POST", "/api/v1/drops/x/fire", &b"{\"cue\":1}"[..])
        );
        let huge = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_REQUEST + 1
        );
        assert!(parse_request(huge.as_bytes()).is_err());
        assert!(parse_request(&vec![b'a'; MAX_REQUEST + 1]).is_err());
    }

    #[test]
    fn upgrades_and_headers() {
        let head =
            b"GET /ws/v1/drops/x HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: abc==\r\n";
        assert!(is_upgrade(head));
        assert!(!is_upgrade(b"POST /ws HTTP/1.1\r\nUpgrade: websocket\r\n"));
        let head = String::from_utf8_lossy(head);
        assert_eq!(header(&head, "sec-websocket-key"), Some("abc=="));
        assert_eq!(header(&head, "origin"), None);
    }

    #[test]
    fn the_stock_sells_once() {
        let stock = Stock::default();
        let mut item: InventoryItem = serde_json::from_value(json!({
            "sku": "s", "name": "n", "price_cents": 1, "stock": 2
        }))
        .unwrap();
        item.per_viewer_limit = 1;
        stock.reset(Some(item));
        let claim = r#"{"type":"claim","sku":"s","rid":"r"}"#;
        let answers: Vec<Value> = (0..3)
            .map(|_| serde_json::from_str(&stock.claim(claim).unwrap()).unwrap())
            .collect();
        let oks: Vec<bool> = answers.iter().map(|a| a["ok"] == true).collect();
        assert_eq!(oks, [true, true, false]);
        assert_eq!(answers[2]["reason"], "sold_out");
        assert_eq!(stock.claim(r#"{"type":"ping"}"#), None);
        let stats = stock.stats(5);
        assert_eq!(stats["viewers"]["now"], 5);
        assert_eq!(stats["claims"]["held"], 2);
        assert_eq!(stats["stock"][0]["left"], 0);
    }
}
