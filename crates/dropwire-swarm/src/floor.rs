//! The floor: the simplest broadcaster this machine can run, to measure dropwire against
//! in the same minute. A bare tokio-tungstenite server with no application logic: every
//! socket gets a `welcome` after its `hello`, then the same pre-serialized bytes of each
//! broadcast, one write per viewer, through one `tokio::sync::broadcast` ring.
//!
//! For claim storms it answers each `claim` frame with a `claim_result` from one atomic
//! stock counter (no store, no journal, no limits): the floor of a claim's round trip.
//!
//! It answers just enough of dropwire's HTTP API for the swarm to drive it unchanged
//! (hand-parsed HTTP/1.1, one request per connection):
//! `POST /api/v1/drops` (→ `{"id", "floor": true}`; keeps the first inventory item),
//! `POST …/{id}/start` (no-op), `POST …/{id}/fire` with `{"cue": {…ad-hoc cue…}}` or
//! `{"cue": N}` (any index: a reveal of the kept item), `POST …/{id}/close` (a `state`
//! `closed` broadcast), `GET …/{id}/stats`, `POST /api/v1/viewers` (a dummy token). Any GET
//! that asks for a WebSocket upgrade, on any path, is a viewer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use dropwire_core::protocol::{ClientMsg, NextCue, ServerMsg};
use dropwire_core::{Cue, CueType, DropSpec, DropState, FireTarget, InventoryItem};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The longest HTTP request head or body the control side reads.
const MAX_REQUEST: usize = 64 * 1024;
/// Broadcasts a socket may fall behind before it is dropped (as dropwire's default queue).
const QUEUE: usize = 256;

static NEXT_VIEWER: AtomicU64 = AtomicU64::new(1);

struct Floor {
    /// The last seq, and the sender: both under one lock so seqs go out in order.
    ring: Mutex<(u64, broadcast::Sender<Utf8Bytes>)>,
    viewers: AtomicU64,
    /// The item of the last created drop, revealed by any script-index fire.
    item: Mutex<Option<InventoryItem>>,
    stock_left: AtomicU64,
    granted: AtomicU64,
}

fn now_ms() -> u64 {
    crate::viewer::now_us() / 1000
}

/// Serves until SIGTERM or Ctrl-C. Prints `listening on http://ADDR` when ready.
pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on --bind {bind}"))?;
    let addr = listener.local_addr()?;
    println!("dropwire-floor listening on http://{addr}");
    let floor = Arc::new(Floor {
        ring: Mutex::new((0, broadcast::channel(QUEUE).0)),
        viewers: AtomicU64::new(0),
        item: Mutex::new(None),
        stock_left: AtomicU64::new(0),
        granted: AtomicU64::new(0),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    eprintln!("[floor] accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let floor = Arc::clone(&floor);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(e) = connection(floor, stream).await {
                eprintln!("[floor] {e:#}");
            }
        });
    }
    Ok(())
}

/// Peeks at the request head: a WebSocket upgrade becomes a viewer, anything else is control.
async fn connection(floor: Arc<Floor>, stream: TcpStream) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 4096];
    let head = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.peek(&mut buf))
            .await
            .context("no request within 10 s")??;
        if n == 0 {
            return Ok(());
        }
        if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        }
        if n == buf.len() {
            anyhow::bail!("request head longer than {} bytes", buf.len());
        }
        // Not all here yet: peek returns at once while the rest is in flight.
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    if head.starts_with("get ") && head.contains("upgrade: websocket") {
        viewer(floor, stream).await
    } else {
        control(floor, stream).await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn viewer(floor: Arc<Floor>, stream: TcpStream) -> anyhow::Result<()> {
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let mut ws = tokio_tungstenite::accept_async_with_config(stream, Some(config))
        .await
        .context("websocket handshake")?;
    // The hello (ignored), within 10 s.
    let hello = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    if !matches!(hello, Ok(Some(Ok(Message::Text(_))))) {
        return Ok(());
    }
    let (seq, mut rx) = {
        let ring = floor.ring.lock().unwrap_or_else(|p| p.into_inner());
        (ring.0, ring.1.subscribe())
    };
    let welcome = ServerMsg::Welcome {
        viewer_id: None,
        handle: None,
        server_ms: now_ms(),
        seq,
        maker: false,
    };
    ws.send(Message::text(serde_json::to_string(&welcome)?))
        .await?;
    floor.viewers.fetch_add(1, Ordering::AcqRel);
    let result = async {
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Ok(bytes) => ws.send(Message::Text(bytes)).await?,
                    // Fell behind or shutting down: drop the viewer.
                    Err(_) => return anyhow::Ok(()),
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(answer) = claim(&floor, &text) {
                            ws.send(Message::text(answer)).await?;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    .await;
    floor.viewers.fetch_sub(1, Ordering::AcqRel);
    result
}

#[derive(Deserialize)]
struct FireBody {
    cue: FireTarget,
}

/// Answers a `claim` frame from the one stock counter; other frames get no answer.
fn claim(floor: &Floor, text: &str) -> Option<String> {
    let Ok(ClientMsg::Claim { sku, rid }) = ClientMsg::parse(text) else {
        return None;
    };
    let took = floor
        .stock_left
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    let now = now_ms();
    let n = floor.granted.fetch_add(u64::from(took), Ordering::AcqRel);
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

/// Serializes `msg(seq, ts)` once and hands the bytes to every socket.
fn publish(floor: &Floor, msg: impl FnOnce(u64, u64) -> ServerMsg) -> anyhow::Result<u64> {
    let mut ring = floor.ring.lock().unwrap_or_else(|p| p.into_inner());
    let seq = ring.0 + 1;
    let text = serde_json::to_string(&msg(seq, now_ms()))?;
    ring.0 = seq;
    // No receivers is fine: nobody is watching yet.
    let _ = ring.1.send(Utf8Bytes::from(text));
    Ok(seq)
}

async fn control(floor: Arc<Floor>, mut stream: TcpStream) -> anyhow::Result<()> {
    let mut req = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("request timed out")??;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&req, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
        anyhow::ensure!(req.len() <= MAX_REQUEST, "request head too large");
    };
    anyhow::ensure!(length <= MAX_REQUEST, "request body too large");
    while req.len() < head_end + length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .context("request body timed out")??;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
    let body = &req[head_end..head_end + length];
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (status, answer) = match (method, parts.as_slice()) {
        ("POST", ["api", "v1", "drops"]) => {
            let spec = serde_json::from_slice::<DropSpec>(body).ok();
            let id = spec
                .as_ref()
                .and_then(|s| s.id.clone())
                .unwrap_or_else(|| "floor".into());
            let item = spec.and_then(|s| s.inventory.into_iter().next());
            floor.stock_left.store(
                item.as_ref().map_or(0, |i| u64::from(i.stock)),
                Ordering::Release,
            );
            floor.granted.store(0, Ordering::Release);
            *floor.item.lock().unwrap_or_else(|p| p.into_inner()) = item;
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
        ("POST", ["api", "v1", "drops", _, "fire"]) => {
            match serde_json::from_slice::<FireBody>(body) {
                Ok(FireBody {
                    cue: FireTarget::AdHoc(cue),
                }) => {
                    let seq = publish(&floor, |seq, ts| ServerMsg::Cue {
                        seq,
                        ts,
                        index: None,
                        cue: *cue,
                        at_ms: ts,
                        item: None,
                        public_ms: None,
                        // As dropwire's frames for the swarm's drop carry (its reveal is due
                        // later), so both send frames of the same size.
                        next_cue: Some(NextCue {
                            index: crate::target::REVEAL_CUE,
                            kind: CueType::Reveal,
                            at_ms: ts + 3_590_000,
                        }),
                    })?;
                    ("200 OK", json!({ "seq": seq }))
                }
                Ok(FireBody {
                    cue: FireTarget::Script(index),
                }) => {
                    let item = floor.item.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let mut cue = Cue::new(0, CueType::Reveal);
                    cue.sku = item.as_ref().map(|i| i.sku.clone());
                    cue.title = Some("The swarm's item".into());
                    let seq = publish(&floor, |seq, ts| ServerMsg::Cue {
                        seq,
                        ts,
                        index: Some(index),
                        cue,
                        at_ms: ts,
                        item: item.map(Box::new),
                        public_ms: None,
                        next_cue: None,
                    })?;
                    ("200 OK", json!({ "seq": seq }))
                }
                Err(_) => (
                    "400 Bad Request",
                    json!({"error": {"code": "bad_cue", "message": "fire {\"cue\": N} or {\"cue\": {\"type\": \"cta\", …}}"}}),
                ),
            }
        }
        ("POST", ["api", "v1", "drops", _, "close"]) => {
            let seq = publish(&floor, |seq, ts| ServerMsg::State {
                seq,
                ts,
                state: DropState::Closed,
                elapsed_s: 0.0,
                next_cue: None,
            })?;
            ("200 OK", json!({ "seq": seq }))
        }
        ("GET", ["api", "v1", "drops", _, "stats"]) => {
            let sku = floor
                .item
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|i| i.sku.clone());
            (
                "200 OK",
                json!({
                    "viewers": { "now": floor.viewers.load(Ordering::Acquire) },
                    "claims": { "held": floor.granted.load(Ordering::Acquire), "redeemed": 0, "expired": 0 },
                    "stock": sku.map(|sku| vec![json!({ "sku": sku, "left": floor.stock_left.load(Ordering::Acquire) })]).unwrap_or_default(),
                }),
            )
        }
        ("GET", ["healthz"]) => ("200 OK", json!({ "ok": true })),
        _ => (
            "404 Not Found",
            json!({"error": {"code": "not_found", "message": "the floor answers only the swarm's few paths"}}),
        ),
    };
    let body = answer.to_string();
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
