//! One simulated viewer: a TCP socket bound to its own loopback source address, the
//! WebSocket handshake, `hello`, then every frame timed against its `ts` and checked for
//! gaps in `seq`; at a reveal it claims at once if it holds a token. With `resume`, a
//! viewer whose connection ends early (its node died) connects again with `since` = the
//! last seq it saw and re-sends an unanswered claim with the same rid, as the overlay does.
//! A chatter (see [`crate::chat`]) also sends its chat messages on its schedule.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dropwire_core::protocol::ClientMsg;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::chat::{self, ChatCounts, ChatPlan};
use crate::frame::{self, Kind};

/// How long a viewer may take from connect to `welcome`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters every viewer updates as it goes, so the coordinator can tell when a
/// broadcast or the claims have reached everyone.
#[derive(Debug, Default)]
pub struct Progress {
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub bench_frames: AtomicU64,
    pub claims_sent: AtomicU64,
    pub claims_answered: AtomicU64,
    pub closed_seen: AtomicU64,
    pub finished: AtomicU64,
}

/// What every viewer of a run shares.
#[derive(Debug)]
pub struct Plan {
    pub ws_url: String,
    pub server: SocketAddr,
    /// Loopback source addresses to spread over (empty: let the kernel choose).
    pub sources: Vec<IpAddr>,
    pub progress: Arc<Progress>,
    pub connect_slots: Arc<Semaphore>,
    pub done: watch::Receiver<bool>,
    /// Reconnect with `since` when the server ends a connection before the run does.
    pub resume: bool,
    /// Where to reconnect (another node), if not `ws_url`/`server`.
    pub resume_to: Option<(String, SocketAddr)>,
    /// The chat load, if any.
    pub chat: Option<ChatPlan>,
}

/// One broadcast as one viewer saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub seq: u64,
    pub kind: Kind,
    pub ts_ms: u64,
    pub recv_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAnswer {
    Ok,
    Refused(String),
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub connected: bool,
    pub connect_error: Option<String>,
    /// Why the server ended the connection before the run did.
    pub dropped: Option<String>,
    pub frames: u64,
    pub gaps: u64,
    pub out_of_order: u64,
    pub samples: Vec<Sample>,
    pub claim_sent: bool,
    /// The answer and its latency after the reveal reached this viewer, µs.
    pub claim: Option<(ClaimAnswer, u64)>,
    /// Connections made again with `since` after the server ended one.
    pub resumed: u64,
    /// Broadcasts a resumed connection skipped (it got a snapshot, not the frames missed).
    pub snapshot_gaps: u64,
    /// When the last resume of this viewer was done (welcome and catch-up read), µs.
    pub resumed_us: Option<u64>,
    pub chat: ChatCounts,
}

/// What a viewer carries from one connection to the next.
#[derive(Debug, Default)]
struct Seen {
    last_seq: Option<u64>,
    reveal_us: Option<u64>,
    /// The claim frame sent and not answered yet: sent again on a new connection.
    pending_claim: Option<String>,
    /// Frames stamped before this (µs) are replays after a resume: not timed.
    replay_before_us: u64,
    /// Chat messages this viewer sent (numbers its rids).
    chat_n: u64,
}

/// How long a viewer keeps trying to resume.
const RESUME_FOR: Duration = Duration::from_secs(30);

/// The wait before resume attempt `attempt` (0-based), as the overlay does: exponential
/// from 100 ms, capped at 2 s, with full jitter (uniform in 0..cap) so that thousands of
/// viewers who lost their node at once do not come back in one wave.
fn backoff(idx: usize, attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(5)).min(2000);
    // A small xorshift over the viewer, the attempt and the clock: no RNG crate needed.
    let mut x = (idx as u64) ^ (u64::from(attempt) << 32) ^ now_us() ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_millis(x % cap_ms.max(1))
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn client_config() -> WebSocketConfig {
    // Small buffers: thousands of these live in one process.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

type Ws = WebSocketStream<TcpStream>;

/// Runs viewer `idx` to the end of the run and says what it saw.
pub async fn run(plan: Arc<Plan>, idx: usize, token: Option<String>) -> Outcome {
    let mut out = Outcome::default();
    let progress = Arc::clone(&plan.progress);
    let joined = {
        let _slot = plan.connect_slots.acquire().await;
        tokio::time::timeout(
            JOIN_TIMEOUT,
            join(&plan, idx, token.clone(), None, &mut out),
        )
        .await
    };
    let ws = match joined {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            out.connect_error = Some(e);
            progress.failed.fetch_add(1, Ordering::AcqRel);
            progress.finished.fetch_add(1, Ordering::AcqRel);
            return out;
        }
        Err(_) => {
            out.connect_error = Some("timeout before welcome".into());
            progress.failed.fetch_add(1, Ordering::AcqRel);
            progress.finished.fetch_add(1, Ordering::AcqRel);
            return out;
        }
    };
    out.connected = true;
    progress.connected.fetch_add(1, Ordering::AcqRel);
    let mut seen = Seen::default();
    let mut ws = ws;
    loop {
        watch_drop(&plan, idx, token.is_some(), ws, &mut out, &mut seen).await;
        let Some(why) = out.dropped.clone() else {
            break;
        };
        if !plan.resume || *plan.done.borrow() {
            break;
        }
        match resume(&plan, idx, token.clone(), &mut out, &mut seen).await {
            Ok(again) => {
                out.resumed += 1;
                out.resumed_us = Some(now_us());
                out.dropped = None;
                ws = again;
            }
            Err(e) => {
                out.dropped = Some(format!("{why}; resume failed: {e}"));
                break;
            }
        }
    }
    if out.dropped.is_some() {
        progress.dropped.fetch_add(1, Ordering::AcqRel);
    }
    progress.finished.fetch_add(1, Ordering::AcqRel);
    out
}

/// Connects again with `since`, trying for [`RESUME_FOR`] (a load balancer may still send
/// the first tries to the node that died).
async fn resume(
    plan: &Plan,
    idx: usize,
    token: Option<String>,
    out: &mut Outcome,
    seen: &mut Seen,
) -> Result<Ws, String> {
    let end = tokio::time::Instant::now() + RESUME_FOR;
    let mut attempt = 0;
    loop {
        let pause = backoff(idx, attempt);
        attempt += 1;
        if tokio::time::Instant::now() + pause >= end || *plan.done.borrow() {
            return Err("gave up".into());
        }
        tokio::time::sleep(pause).await;
        let (url, addr) = match &plan.resume_to {
            Some((url, addr)) => (url.as_str(), *addr),
            None => (plan.ws_url.as_str(), plan.server),
        };
        let joined = join_at(plan, url, addr, idx, token.clone(), seen.last_seq, out);
        // A refusal (503 busy, the dead node still listed) or a timeout: try again later.
        if let Ok(Ok(ws)) = tokio::time::timeout(JOIN_TIMEOUT, joined).await {
            seen.replay_before_us = now_us();
            return Ok(ws);
        }
    }
}

/// Connect, handshake, hello, welcome. Frames after the welcome are left for [`watch_drop`].
async fn join(
    plan: &Plan,
    idx: usize,
    token: Option<String>,
    since: Option<u64>,
    out: &mut Outcome,
) -> Result<Ws, String> {
    join_at(plan, &plan.ws_url, plan.server, idx, token, since, out).await
}

/// [`join`] at another node's `url` and `server` address.
async fn join_at(
    plan: &Plan,
    url: &str,
    server: SocketAddr,
    idx: usize,
    token: Option<String>,
    since: Option<u64>,
    out: &mut Outcome,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {}", e.kind()))?;
    if !plan.sources.is_empty() {
        let ip = plan.sources[idx % plan.sources.len()];
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind: {}", e.kind()))?;
    }
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {}", e.kind()))?;
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_config()))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(resp) => format!("handshake: HTTP {}", resp.status()),
                e => format!("handshake: {}", short(&e)),
            })?;
    let hello = serde_json::to_string(&ClientMsg::Hello {
        token,
        since,
        visitor: None,
        admin: None,
    })
    .map_err(|e| format!("hello: {e}"))?;
    ws.send(Message::text(hello))
        .await
        .map_err(|e| format!("hello: {}", short(&e)))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                out.frames += 1;
                match frame::parse(&text) {
                    Some(f) if f.kind == Kind::Welcome => return Ok(ws),
                    Some(f) if f.kind == Kind::Error => {
                        return Err(format!(
                            "error frame before welcome: {}",
                            f.reason.as_deref().unwrap_or("?")
                        ));
                    }
                    _ => {}
                }
            }
            Some(Ok(Message::Close(c))) => {
                return Err(format!(
                    "closed before welcome: {}",
                    c.map(|c| u16::from(c.code)).unwrap_or(0)
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("before welcome: {}", short(&e))),
            None => return Err("eof before welcome".into()),
        }
    }
}

/// A short, stable name for an error, to count errors by kind.
fn short(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => format!("io {}", io.kind()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "connection closed".into()
        }
        tungstenite::Error::Protocol(p) => format!("protocol: {p}"),
        tungstenite::Error::Capacity(c) => format!("capacity: {c}"),
        other => other.to_string().chars().take(60).collect(),
    }
}

/// Watches until the drop closes or the run ends, timing every broadcast.
async fn watch_drop(
    plan: &Plan,
    idx: usize,
    may_claim: bool,
    mut ws: Ws,
    out: &mut Outcome,
    seen: &mut Seen,
) {
    let progress = &plan.progress;
    let mut done = plan.done.clone();
    let chatter = plan.chat.as_ref().filter(|c| may_claim && idx < c.chatters);
    let mut turn = chatter.map(|c| c.next_turn(idx, tokio::time::Instant::now()));
    if let Some(text) = seen.pending_claim.clone() {
        // Asked on a connection that ended before the answer: the same rid gets the same
        // answer, on whichever node.
        if let Err(e) = ws.send(Message::text(text)).await {
            out.dropped = Some(format!("claim send: {}", short(&e)));
            return;
        }
    }
    loop {
        let msg = tokio::select! {
            biased;
            _ = done.changed() => break,
            () = tokio::time::sleep_until(turn.unwrap_or_else(tokio::time::Instant::now)), if turn.is_some() => {
                let Some(c) = chatter else { continue };
                turn = Some(c.next_turn(idx, tokio::time::Instant::now() + Duration::from_millis(1)));
                if *c.on.borrow() {
                    let text = chat::frame(idx, seen.chat_n);
                    seen.chat_n += 1;
                    out.chat.sent += 1;
                    if let Err(e) = ws.send(Message::text(text)).await {
                        out.dropped = Some(format!("chat send: {}", short(&e)));
                        return;
                    }
                }
                continue;
            }
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(c))) => {
                let code = c.map(|c| u16::from(c.code)).unwrap_or(1005);
                out.dropped = Some(format!("closed by server: {code}"));
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                out.dropped = Some(short(&e));
                return;
            }
            None => {
                out.dropped = Some("eof".into());
                return;
            }
        };
        let recv_us = now_us();
        out.frames += 1;
        let Some(f) = frame::parse(&text) else {
            continue;
        };
        match f.kind {
            Kind::Welcome => {}
            Kind::Chat => {
                // Counted and checked for gaps, not timed: chat is not what the run measures,
                // and a sample per chat frame per viewer would cost the swarm much memory.
                out.chat.frames += 1;
                out.chat.messages += f.messages as u64;
                if let Some(seq) = f.seq {
                    match seen.last_seq {
                        Some(l) if seq == l + 1 => {}
                        Some(l) if seq > l => out.gaps += seq - l - 1,
                        Some(_) => out.out_of_order += 1,
                        None => {}
                    }
                    seen.last_seq = Some(seen.last_seq.map_or(seq, |l| l.max(seq)));
                }
            }
            Kind::Snapshot => {
                if let Some(seq) = f.seq {
                    if let Some(l) = seen.last_seq.filter(|l| seq > *l) {
                        out.snapshot_gaps += seq - l;
                    }
                    seen.last_seq = Some(seen.last_seq.map_or(seq, |l| l.max(seq)));
                }
            }
            _ => {
                if let Some(seq) = f.seq {
                    match seen.last_seq {
                        Some(l) if seq == l + 1 => {}
                        Some(l) if seq > l => out.gaps += seq - l - 1,
                        Some(_) => out.out_of_order += 1,
                        None => {}
                    }
                    seen.last_seq = Some(seen.last_seq.map_or(seq, |l| l.max(seq)));
                    let replayed = f.ts.is_some_and(|ts| ts * 1000 < seen.replay_before_us);
                    if let Some(ts_ms) = f.ts.filter(|_| !replayed) {
                        out.samples.push(Sample {
                            seq,
                            kind: f.kind,
                            ts_ms,
                            recv_us,
                        });
                    }
                }
            }
        }
        match f.kind {
            Kind::BenchCue => {
                progress.bench_frames.fetch_add(1, Ordering::AcqRel);
            }
            Kind::Reveal if may_claim && !out.claim_sent => {
                let Some(sku) = f.sku else { continue };
                seen.reveal_us = Some(recv_us);
                let claim = ClientMsg::Claim {
                    sku: sku.into_owned(),
                    rid: format!("c{idx}"),
                };
                let Ok(text) = serde_json::to_string(&claim) else {
                    continue;
                };
                out.claim_sent = true;
                seen.pending_claim = Some(text.clone());
                progress.claims_sent.fetch_add(1, Ordering::AcqRel);
                if let Err(e) = ws.send(Message::text(text)).await {
                    out.dropped = Some(format!("claim send: {}", short(&e)));
                    return;
                }
            }
            Kind::ClaimResult if out.claim.is_none() => {
                let answer = match (f.ok, f.reason) {
                    (Some(true), _) => ClaimAnswer::Ok,
                    (_, Some(r)) => ClaimAnswer::Refused(r.into_owned()),
                    _ => ClaimAnswer::Refused("no reason".into()),
                };
                let lat = recv_us.saturating_sub(seen.reveal_us.unwrap_or(recv_us));
                seen.pending_claim = None;
                out.claim = Some((answer, lat));
                progress.claims_answered.fetch_add(1, Ordering::AcqRel);
            }
            Kind::ChatResult => match (f.ok, f.reason) {
                (Some(true), _) => out.chat.ok += 1,
                (_, reason) => {
                    let r = reason.map_or_else(|| "no reason".to_owned(), |r| r.into_owned());
                    *out.chat.refused.entry(r).or_default() += 1;
                }
            },
            Kind::State { closed: true } => {
                progress.closed_seen.fetch_add(1, Ordering::AcqRel);
                break;
            }
            _ => {}
        }
    }
    // Our side ends it: a close frame, and a short wait for the server's answer.
    let bye = async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), bye).await;
}
