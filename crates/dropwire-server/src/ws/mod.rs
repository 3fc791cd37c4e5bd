//! The viewer WebSocket, `GET /ws/v1/drops/{id}`: one task per connection that owns all of
//! its state (viewer, rate limiter) and reads the client. Broadcasts are written by the
//! hub's fan-out writer into the socket's writing half (the connection's outlet); the task
//! takes that half back to write its own replies and to catch up when the writer could not
//! write (`sink`; the policy is in the hub's `fanout`).
//!
//! hello (within 10 s) → welcome → missed broadcasts or a snapshot → live broadcasts,
//! with the client's requests (claim, coupon, ping) answered in between.
//!
//! A client that breaks RFC 6455 gets the close code the RFC names (1002, 1007, 1009), and
//! a client's close frame is answered; docs/api.md, "Protocol errors".

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::future::OptionFuture;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use governor::clock::QuantaClock;
use governor::{Quota, RateLimiter};
use tracing::Instrument;

use dropwire_core::protocol::{ClientMsg, MAX_CLIENT_FRAME, ServerMsg, valid_visitor};
use dropwire_core::{DropId, Fact};

use crate::admission::Handshake;
use crate::app::AppState;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::hub::{CatchUp, DropHub, Outlet, Registration, WsSink};
use crate::pending_draws::PendingDraws;

mod close;
mod requests;
mod sink;

pub use close::CloseReason;

/// Refused frames after which a flooding client is disconnected.
const FLOOD_STRIKES: u32 = 20;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// The clock every connection's frame limiter reads: built once and cloned, since building
/// one probes the CPU (CPUID, a trap to the hypervisor in a VM).
fn rate_clock() -> QuantaClock {
    static CLOCK: OnceLock<QuantaClock> = OnceLock::new();
    CLOCK.get_or_init(QuantaClock::default).clone()
}

/// `GET /ws/v1/drops/{id}`: 404 before the upgrade if the drop is unknown.
pub async fn upgrade(
    Path(id): Path<String>,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    state.admission.check_origin(&headers)?;
    let Some(handshake) = state.admission.begin_handshake() else {
        state.metrics.refusals.with_label_values(&["busy"]).inc();
        return Err(AppError::Busy { retry_after_s: 1 });
    };
    let id = DropId::parse(&id).map_err(|_| AppError::NotFound(format!("no drop {id:?}")))?;
    let hub = state
        .hubs
        .get(&id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no drop {id}")))?;
    let client = state.trusted_proxies.client_ip(peer.ip(), &headers);
    let ticket = state.admission.admit(client);
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!("viewer", drop = %id, conn);
    Ok(ws
        .read_buffer_size(2048)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(4 * MAX_CLIENT_FRAME)
        .max_frame_size(4 * MAX_CLIENT_FRAME)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| {
            // Split before the connection's future exists: it keeps the two halves (the
            // socket itself lives in their shared lock), not a moved-out socket besides.
            let (mut sink, stream) = socket.split();
            async move {
                match ticket {
                    Ok(_admitted) => {
                        let mut connection = Connection::new(state, hub, conn);
                        connection.handshake = Some(handshake);
                        connection.sink = Some(sink);
                        connection.run(stream).await
                    }
                    Err(refusal) => {
                        tracing::debug!(%client, reason = refusal.as_str(), "connection refused");
                        state
                            .metrics
                            .refusals
                            .with_label_values(&[refusal.as_str()])
                            .inc();
                        let close = CloseReason::TooManyConnections.frame();
                        let _ = sink.send(Message::Close(Some(close))).await;
                    }
                }
            }
            .instrument(span)
        }))
}

struct Connection {
    state: AppState,
    hub: Arc<DropHub>,
    conn: u64,
    viewer: Option<Viewer>,
    /// The per-viewer limit the viewer's passes raise it to in this drop, read at hello.
    raised_limit: Option<u32>,
    /// The writing half of the socket while the task holds it (always before the welcome).
    sink: Option<WsSink>,
    /// The outlet the hub's writer fills, from the welcome on.
    outlet: Option<Registration>,
    /// The seq of the last broadcast written, while the task holds the sink.
    last_seq: u64,
    limiter: RateLimiter<
        governor::state::NotKeyed,
        governor::state::InMemoryState,
        governor::clock::DefaultClock,
    >,
    strikes: u32,
    /// Held from the upgrade request to the welcome and catch-up (`--max-handshakes`).
    handshake: Option<Handshake>,
    /// The connection is the maker's own (an admin token in its hello).
    maker: bool,
    /// The answers to the latest chat rids, so a retried rid is answered alike and its
    /// message not sent twice (at most [`CHAT_RIDS`]).
    chat_rids: std::collections::VecDeque<(String, ServerMsg)>,
    /// Fair start: claims entered in draws, asked again at their draw's time.
    draws: PendingDraws,
}

enum Step {
    Continue,
    Close(CloseReason),
    Gone,
    /// The client sent a close frame: tungstenite has queued the answering one (the client's
    /// code echoed, or 1002 for a code no endpoint may send), which `run` flushes.
    ClosedByClient,
}

/// Counts the connection while it lives.
struct Presence<'a>(&'a AppState);

impl Drop for Presence<'_> {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connection {
    fn new(state: AppState, hub: Arc<DropHub>, conn: u64) -> Self {
        let per_s = NonZeroU32::new(state.frames_per_s).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(state.frame_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_s).allow_burst(burst);
        Connection {
            hub,
            conn,
            viewer: None,
            raised_limit: None,
            sink: None,
            outlet: None,
            last_seq: 0,
            limiter: RateLimiter::direct_with_clock(quota, rate_clock()),
            strikes: 0,
            handshake: None,
            maker: false,
            chat_rids: std::collections::VecDeque::new(),
            draws: PendingDraws::default(),
            state,
        }
    }

    /// Serves the viewer, the writing half of its socket in `self.sink`, until it goes.
    async fn run(mut self, mut stream: SplitStream<WebSocket>) {
        let state = self.state.clone();
        state.metrics.connections.inc();
        state.metrics.connections_total.inc();
        state.connections.fetch_add(1, Ordering::AcqRel);
        let _presence = Presence(&state);
        let step = self.serve(&mut stream).await;
        // Out of the writer's outlets, and the sink back with the task.
        let outlet = self.outlet.take();
        let sink = self
            .sink
            .take()
            .or_else(|| outlet.and_then(|o| o.outlet().take().0));
        let Some(mut sink) = sink else {
            tracing::debug!("viewer gone");
            return;
        };
        // Boxed: the goodbye is written once, its future need not sit in every connection.
        Box::pin(close::goodbye(&state, &mut sink, &mut stream, step)).await;
        tracing::debug!("viewer gone");
    }

    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>) -> Step {
        let mut shutdown = self.state.shutdown.clone();
        // Phase 1: the hello. Boxed, as are the other rare steps (a client's request, a
        // draw, the passes, the welcome, a catch-up): a future is as large as its largest
        // step, and this one lives as long as the viewer.
        let (since, visitor, maker) = match Box::pin(self.hello(stream, &mut shutdown)).await {
            Ok(hello) => hello,
            Err(step) => return step,
        };
        self.maker = maker;
        // A pass holder joins the drop's early-access segment before its welcome, and may
        // claim up to its passes' limit.
        if let Some(viewer) = self.viewer.as_ref().filter(|_| !maker) {
            let passes = crate::pass_grants::apply_passes(&self.state, &self.hub, &viewer.id);
            self.raised_limit = Box::pin(passes).await;
        }

        // Phase 2: welcome, catch up (boxed, once), then live.
        let (outlet, _leave) = match Box::pin(self.welcome(since, visitor)).await {
            Ok(joined) => joined,
            Err(step) => return step,
        };
        self.handshake = None; // joined: the next viewer may start its handshake
        // Built once: the shutdown signal; the draw timer only while the viewer has a draw
        // pending (boxed: most viewers never enter one).
        let shutdown = shutdown.changed();
        tokio::pin!(shutdown);
        let mut draw_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            match (self.draws.next(), &mut draw_timer) {
                (None, _) => draw_timer = None,
                (Some(at), Some(timer)) if timer.deadline() == at => {}
                (Some(at), Some(timer)) => timer.as_mut().reset(at),
                (Some(at), None) => draw_timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            let step = tokio::select! {
                biased;
                _ = &mut shutdown => Step::Close(CloseReason::Shutdown),
                // A draw this viewer entered is due: its result, asked with the same rid.
                Some(()) = OptionFuture::from(draw_timer.as_mut()), if draw_timer.is_some() => {
                    Box::pin(self.drawn()).await
                }
                // A viewer's own request (a claim) is answered before broadcasts to catch up.
                msg = stream.next() => match self.read(msg) {
                    Ok(Some(text)) => Box::pin(self.handle(text)).await,
                    Ok(None) => Step::Continue,
                    Err(step) => step,
                },
                // The writer could not write a broadcast (or left it unflushed).
                () = outlet.woken() => self.hold(),
            };
            if !matches!(step, Step::Continue) {
                return step;
            }
            // Whatever wrote (a reply, or a wake-up) catches up and hands the sink back.
            if self.sink.is_some()
                && let step @ (Step::Gone | Step::Close(_)) = Box::pin(self.release()).await
            {
                return step;
            }
        }
    }

    /// Phase 2: joins the hub (its outlet registered), counts the viewer, writes the welcome
    /// and what it missed, and hands the writing half to the hub's writer; the outlet, and
    /// the viewer's place in the count while it lives.
    async fn welcome(
        &mut self,
        since: Option<u64>,
        visitor: Option<String>,
    ) -> Result<(Arc<Outlet>, Option<Leave>), Step> {
        let now = self.hub.now_ms();
        let join = self.hub.join(self.conn, since, now);
        let outlet = std::sync::Arc::clone(join.outlet.outlet());
        self.outlet = Some(join.outlet);
        self.last_seq = join.seq;
        // Who is watching: the viewer of the token, else the anonymous visitor id its browser
        // keeps (so a returning viewer counts once), else nobody in particular. The maker is
        // no viewer: not counted, not in the ledger.
        let leave = (!self.maker).then(|| {
            let audience = match (&self.viewer, visitor) {
                (Some(viewer), _) => Some(viewer.id.clone()),
                (None, Some(v)) if valid_visitor(&v) => Some(format!("anon:{v}")),
                _ => None,
            };
            self.hub.viewer_joined(audience.as_deref());
            if let Some(id) = &audience {
                // Once per viewer and drop in the ledger, however often it reconnects.
                let fact =
                    Fact::attended(self.hub.id.as_str(), id, now).by(&self.hub.record().maker);
                self.state.record(vec![fact]);
            }
            Leave(Arc::clone(&self.hub))
        });
        let welcome = ServerMsg::Welcome {
            viewer_id: self.viewer.as_ref().map(|v| v.id.clone()),
            handle: self.viewer.as_ref().map(|v| v.handle.clone()),
            server_ms: now,
            seq: join.seq,
            maker: self.maker,
        };
        if let Step::Gone = self.send(&welcome).await {
            return Err(Step::Gone);
        }
        let catch_up = match join.catch_up {
            CatchUp::Nothing => Vec::new(),
            CatchUp::Frames(frames) => frames.into_iter().map(|f| f.text).collect(),
            CatchUp::Snapshot(text) => vec![text],
        };
        for text in catch_up {
            if let step @ (Step::Gone | Step::Close(_)) = self.write(text).await {
                return Err(step);
            }
        }
        // The sink to the writer, once caught up with what was delivered meanwhile.
        if let step @ (Step::Gone | Step::Close(_)) = self.release().await {
            return Err(step);
        }
        Ok((outlet, leave))
    }

    /// Phase 1: reads frames until the hello (within the hello timeout); its `since`, its
    /// anonymous visitor id, and whether the connection is the maker's own.
    async fn hello(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(Option<u64>, Option<String>, bool), Step> {
        let deadline = tokio::time::Instant::now() + self.state.hello_timeout;
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    let within = self.state.hello_timeout.as_secs_f64();
                    let _ = self.send(&ServerMsg::error("hello_timeout", format!("send {{\"type\":\"hello\"}} within {within} s of connecting"))).await;
                    return Err(Step::Close(CloseReason::HelloTimeout));
                }
                _ = shutdown.changed() => return Err(Step::Close(CloseReason::Shutdown)),
            };
            let text = match self.read(msg) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(step) => return Err(step),
            };
            match self.parse(text).await {
                Ok(Some(ClientMsg::Hello {
                    token,
                    since,
                    visitor,
                    admin,
                })) => {
                    // The maker's control panel watches without being counted as a viewer.
                    // An admin token, or a token of the maker whose drop it is.
                    let allowed = match &admin {
                        Some(t) => {
                            crate::caller::may_administer(&self.state, t, &self.hub.record().maker)
                                .await
                        }
                        None => false,
                    };
                    let maker = match admin {
                        Some(_) if allowed => true,
                        Some(_) => {
                            let m = ServerMsg::error(
                                "bad_admin_token",
                                "the admin token is wrong; watching as a viewer",
                            );
                            if let Step::Gone = self.send(&m).await {
                                return Err(Step::Gone);
                            }
                            false
                        }
                        None => false,
                    };
                    if let Some(token) = token {
                        self.viewer = self.state.keys.verify(&token, self.hub.now_ms() / 1000);
                        if self.viewer.is_none() {
                            let m = ServerMsg::error(
                                "bad_token",
                                "the token is forged, expired or from another hub; watching without one",
                            );
                            if let Step::Gone = self.send(&m).await {
                                return Err(Step::Gone);
                            }
                        }
                    }
                    return Ok((since, visitor, maker));
                }
                Ok(Some(_)) => {
                    let m = ServerMsg::error(
                        "hello_required",
                        "the first frame must be {\"type\":\"hello\"}",
                    );
                    if let Step::Gone = self.send(&m).await {
                        return Err(Step::Gone);
                    }
                }
                Ok(None) => {}
                Err(step) => return Err(step),
            }
        }
    }

    /// A client data frame (text, or `None` for binary), or what to do instead.
    fn read(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Result<Option<Option<Utf8Bytes>>, Step> {
        match msg {
            None => Err(Step::Gone),
            Some(Err(e)) => Err(CloseReason::of_read_error(e).map_or(Step::Gone, Step::Close)),
            Some(Ok(Message::Close(_))) => Err(Step::ClosedByClient),
            Some(Ok(Message::Text(t))) => Ok(Some(Some(t))),
            Some(Ok(Message::Binary(_))) => Ok(Some(None)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        }
    }

    /// Rate-limits and parses one frame; refusals answer with an `error` frame.
    async fn parse(&mut self, text: Option<Utf8Bytes>) -> Result<Option<ClientMsg>, Step> {
        let refusal = if self.limiter.check().is_err() {
            self.strikes += 1;
            if self.strikes >= FLOOD_STRIKES {
                return Err(Step::Close(CloseReason::Flooding));
            }
            Some((
                "rate_limited".to_owned(),
                format!("at most {} frames a second", self.state.frames_per_s),
            ))
        } else if let Some(text) = text {
            match ClientMsg::parse(text.as_str()) {
                Ok(msg) => return Ok(Some(msg)),
                Err((kind, m)) => Some((kind.code().to_owned(), m)),
            }
        } else {
            Some((
                "bad_json".to_owned(),
                "binary frames are not accepted; send JSON text".to_owned(),
            ))
        };
        if let Some((code, message)) = refusal {
            self.state
                .metrics
                .frame_errors
                .with_label_values(&[&code])
                .inc();
            if let Step::Gone = self.send(&ServerMsg::Error { code, message }).await {
                return Err(Step::Gone);
            }
        }
        Ok(None)
    }

    async fn handle(&mut self, text: Option<Utf8Bytes>) -> Step {
        let msg = match self.parse(text).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Step::Continue,
            Err(step) => return step,
        };
        let reply = match msg {
            ClientMsg::Hello { .. } => {
                ServerMsg::error("already_hello", "hello is only the first frame")
            }
            ClientMsg::Ping { ts } => ServerMsg::Pong {
                ts,
                server_ms: self.hub.now_ms(),
            },
            ClientMsg::Claim { sku, rid } => {
                let viewer = self.viewer.as_ref();
                let reply = self
                    .hub
                    .claim_raised(viewer, self.raised_limit, sku, rid)
                    .await;
                self.await_draw(&reply, None);
                reply
            }
            ClientMsg::Coupon { rid } => self.hub.coupon(self.viewer.as_ref(), rid).await,
            ClientMsg::Here { quest, rid } => self.hub.here(self.viewer.as_ref(), quest, rid).await,
            ClientMsg::Chat { text, rid } => {
                let reply = self.chat(&text, rid.clone());
                let step = self.send(&reply).await;
                let accepted = matches!(reply, ServerMsg::ChatResult { ok: true, .. });
                if let (Step::Continue, true, Some(viewer)) = (&step, accepted, &self.viewer)
                    && !self.maker
                {
                    let viewer = viewer.clone();
                    for msg in self.hub.keyword_quests(&viewer, &text, &rid).await {
                        if let step @ (Step::Gone | Step::Close(_)) = self.send(&msg).await {
                            return step;
                        }
                    }
                }
                return step;
            }
        };
        self.send(&reply).await
    }

    async fn send(&mut self, msg: &ServerMsg) -> Step {
        match crate::encode::to_json("a message to a viewer", msg) {
            Ok(text) => self.write(Utf8Bytes::from(text)).await,
            Err(_) => Step::Continue,
        }
    }
}

struct Leave(Arc<DropHub>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.viewer_left();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn of two arguments returns, without calling it.
    fn future_size<A, B, F: Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every viewer holds one connection future for as long as it watches, so its size is
    /// memory per viewer: the rare steps (hello, welcome, a request, a draw, a catch-up, the
    /// goodbye) are boxed and only the wait for the next one stays inline. It was 4,480
    /// bytes (debug build) before they were: about 9 KiB of server memory per viewer then.
    #[test]
    fn a_viewer_connection_future_stays_small() {
        let size = future_size(Connection::run);
        assert!(
            size <= 2048,
            "a viewer connection's future is {size} bytes: box the rare step that grew it"
        );
    }
}
