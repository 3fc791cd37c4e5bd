//! The application: shared state, the router, the background tasks, and `serve`.

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router, middleware};
use dropwire_core::{DropId, DropState, Fact, TimelineView};
use dropwire_funnel::Ledger;
use dropwire_store::{Bus, Store, StoreError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::admission::Admission;
use crate::api;
use crate::auth::Keys;
use crate::calendar::{self, CalendarCache};
use crate::client_ip::TrustedProxies;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::AppError;
use crate::funnel::{self, Feed, Funnel};
pub use crate::hub::Hubs;
use crate::hub::{DropHub, HubCtx};
use crate::metered::MeteredStore;
use crate::metrics::{self, Metrics};
use crate::pages;
use crate::webhooks::{self, WebhookSettings};
use crate::ws;

/// What `AppState::start` needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub admin_token: String,
    /// Admin tokens accepted besides `admin_token` (a rotation under way).
    pub extra_admin_tokens: Vec<String>,
    /// The root of viewer-token and coupon-code keys (default: the admin token).
    pub signing_secret: Option<String>,
    pub jwt_secret: Option<String>,
    pub viewer_queue: usize,
    pub socket_send_buffer: usize,
    pub shutdown_grace: Duration,
    /// Viewer tokens one client may mint per minute without the admin token.
    pub mints_per_minute: u32,
    /// Proxies whose `Forwarded`/`X-Forwarded-For` name the client (for the limits per client).
    pub trusted_proxies: TrustedProxies,
    /// Page origins that may open viewer connections (empty: any).
    pub allowed_origins: Vec<String>,
    /// Viewer connections one client may hold at once, and open per minute.
    pub connections_per_client: u32,
    pub connects_per_minute: u32,
    /// Viewer connections between their upgrade request and their welcome at once.
    pub max_handshakes: usize,
    /// Frames a viewer may send per second, and in a burst.
    pub frames_per_s: u32,
    pub frame_burst: u32,
    /// Broadcasts kept per drop for viewers resuming with `since`.
    pub history: usize,
    /// How long a new connection may take to say hello.
    pub hello_timeout: Duration,
    /// How long a client may take to send a request's headers, counted from the moment the
    /// connection is ready for one (its start, or the end of the previous response): then
    /// the connection is closed. Bounds a slowloris and an idle keep-alive connection
    /// (30 s; an upgraded WebSocket is no longer an HTTP connection, and is not affected).
    pub header_read_timeout: Duration,
    /// A write to a viewer that takes longer than this marks it slow.
    pub send_timeout: Duration,
    /// The cross-node bus: set it when several nodes serve one drop (with a Redis store,
    /// its [`RedisBus`](dropwire_store::RedisBus); in tests, a
    /// [`MemoryBus`](dropwire_store::MemoryBus) over a shared store).
    pub bus: Option<Arc<dyn Bus>>,
    /// The funnel ledger (`None`: `--ledger off`, the live hub alone).
    pub ledger: Option<Ledger>,
    /// How webhooks are delivered.
    pub webhooks: WebhookSettings,
    /// How long a closed drop's hub stays loaded without viewers or use before it is
    /// evicted (a later request loads it again).
    pub hub_idle_grace: Duration,
    /// How long a cue or state change is retried on the bus (Redis) before it is given up.
    pub publish_patience: Duration,
    /// How often expired holds are swept.
    pub sweep_every: Duration,
    /// The hub's public base URL (`--public-url`), for the calendar feed's links; `None`:
    /// `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// With a bus: how often the node looks for drops due to start by themselves that
    /// another node made ([`calendar::scan`]).
    pub schedule_scan_every: Duration,
    /// The chat's limits (message length, per-viewer rate).
    pub chat: crate::hub::ChatLimits,
}

/// With many nodes, each looks for drops due to start by themselves this often.
pub const SCHEDULE_SCAN_EVERY: Duration = Duration::from_secs(30);

impl Options {
    /// Options with the defaults of `dropwire serve`: those of [`Config::default`].
    pub fn new(store: Arc<dyn Store>, admin_token: String) -> Self {
        Options::from_config(store, admin_token, &Config::default())
    }

    /// Options as a resolved `config` sets them (the one table of defaults is the
    /// config's); the caller adds the bus and the ledger it opened.
    pub fn from_config(store: Arc<dyn Store>, admin_token: String, config: &Config) -> Self {
        let limits = &config.limits;
        Options {
            store,
            clock: Clock::System,
            admin_token,
            extra_admin_tokens: config.admin_tokens.iter().skip(1).cloned().collect(),
            signing_secret: config.signing_secret.clone(),
            jwt_secret: config.jwt_secret.clone(),
            viewer_queue: config.viewer_queue,
            socket_send_buffer: config.socket_send_buffer,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
            mints_per_minute: limits.mints_per_minute,
            trusted_proxies: limits.trusted_proxies.clone(),
            allowed_origins: limits.allowed_origins.clone(),
            connections_per_client: limits.connections_per_client,
            connects_per_minute: limits.connects_per_minute,
            max_handshakes: limits.max_handshakes,
            frames_per_s: limits.frames_per_s,
            frame_burst: limits.frame_burst,
            history: limits.history,
            hello_timeout: limits.hello_timeout,
            header_read_timeout: limits.header_timeout,
            send_timeout: limits.send_timeout,
            bus: None,
            ledger: None,
            webhooks: config.webhooks.clone(),
            hub_idle_grace: Duration::from_secs(config.hub_idle_grace_s),
            publish_patience: crate::hub::PUBLISH_PATIENCE,
            sweep_every: Duration::from_secs(1),
            public_url: config.public_url.clone(),
            schedule_scan_every: SCHEDULE_SCAN_EVERY,
            chat: crate::hub::ChatLimits {
                max_chars: limits.chat_max_chars,
                rate_per_min: limits.chat_rate_per_min,
                burst: limits.chat_burst,
                ..crate::hub::ChatLimits::default()
            },
        }
    }
}

/// Shared by every handler and connection: one pointer, so each viewer connection (which
/// holds a few copies across its future) pays 8 bytes a copy, not the whole state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What [`AppState`] points to.
#[derive(Debug)]
pub struct AppInner {
    pub store: Arc<dyn Store>,
    /// The funnel ledger and its feed (`None` with `--ledger off`).
    pub funnel: Option<Funnel>,
    pub hubs: Arc<Hubs>,
    pub keys: Arc<Keys>,
    /// Recent maker-token look-ups ([`crate::caller`]).
    pub maker_tokens: crate::caller::TokenCache,
    pub metrics: Metrics,
    pub clock: Clock,
    pub shutdown: watch::Receiver<bool>,
    /// Viewer connections open now (for draining on shutdown).
    pub connections: Arc<AtomicUsize>,
    pub draining: Arc<AtomicBool>,
    pub mint_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    pub trusted_proxies: TrustedProxies,
    pub admission: Arc<Admission>,
    pub hello_timeout: Duration,
    pub header_read_timeout: Duration,
    pub send_timeout: Duration,
    pub frames_per_s: u32,
    pub frame_burst: u32,
    /// Webhook URLs may reach private addresses (`--webhook-allow-private`).
    pub webhook_allow_private: bool,
    /// The launch calendar's list, reused for a moment (it is public).
    pub calendar: CalendarCache,
    /// The key that signs portable passes, read from the ledger once ([`crate::pass_tokens`]).
    pub pass_key: tokio::sync::OnceCell<std::sync::Arc<crate::pass_tokens::PassKey>>,
    /// `--public-url`, for the calendar feed's links.
    pub public_url: Option<String>,
    socket_send_buffer: usize,
    shutdown_grace: Duration,
    shutdown_tx: Arc<watch::Sender<bool>>,
    sweep_every: Duration,
}

impl AppState {
    /// Builds the state, loads every drop that is not closed (live ones resume their
    /// timeline) and starts the hold sweeper.
    pub async fn start(opts: Options) -> Result<AppState, StoreError> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let metrics = Metrics::new();
        let store = MeteredStore::wrap(opts.store, &metrics);
        let funnel = opts.ledger.map(|ledger| Funnel {
            feed: Feed::start(ledger.clone(), metrics.clone()),
            ledger,
        });
        let keys = Arc::new(Keys::with(
            std::iter::once(opts.admin_token)
                .chain(opts.extra_admin_tokens)
                .collect(),
            opts.signing_secret.as_deref(),
            opts.jwt_secret.as_deref(),
        ));
        let ctx = HubCtx {
            keys: Arc::clone(&keys),
            feed: funnel.as_ref().map(|f| f.feed.clone()),
            store: Arc::clone(&store),
            clock: opts.clock,
            metrics: metrics.clone(),
            viewer_queue: opts.viewer_queue,
            history: opts.history,
            shutdown: shutdown.clone(),
            bus: opts.bus,
            publish_patience: opts.publish_patience,
            chat: opts.chat,
        };
        let per_minute = NonZeroU32::new(opts.mints_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let state = AppState(Arc::new(AppInner {
            store,
            funnel,
            hubs: Arc::new(Hubs::new(ctx, opts.hub_idle_grace)),
            keys,
            maker_tokens: crate::caller::TokenCache::default(),
            metrics,
            clock: opts.clock,
            shutdown,
            connections: Arc::new(AtomicUsize::new(0)),
            draining: Arc::new(AtomicBool::new(false)),
            mint_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            trusted_proxies: opts.trusted_proxies,
            admission: Admission::with_handshakes(
                opts.allowed_origins,
                opts.connections_per_client,
                opts.connects_per_minute,
                opts.max_handshakes,
            ),
            hello_timeout: opts.hello_timeout,
            frames_per_s: opts.frames_per_s,
            frame_burst: opts.frame_burst,
            header_read_timeout: opts.header_read_timeout,
            send_timeout: opts.send_timeout,
            webhook_allow_private: opts.webhooks.allow_private,
            calendar: CalendarCache::default(),
            pass_key: tokio::sync::OnceCell::new(),
            public_url: opts.public_url,
            socket_send_buffer: opts.socket_send_buffer,
            shutdown_grace: opts.shutdown_grace,
            shutdown_tx: Arc::new(shutdown_tx),
            sweep_every: opts.sweep_every,
        }));
        // Drops still to come or under way resume their timeline now (a drop whose start on
        // schedule passed while no node ran starts now, if it is not too late); closed ones load on
        // first use (a node on a Redis with many past drops need not hold them all, nor
        // read them: the store lists the drops that may still change).
        let now = state.clock.now_ms();
        for record in state.store.open_drops().await? {
            let view = TimelineView::compute(&record.spec.script, &record.log, now);
            if view.state != DropState::Closed {
                state.hubs.get(&record.id).await?;
            }
        }
        crate::recipes::load_shipped(&state).await;
        tokio::spawn(Arc::clone(&state.hubs).sweep_holds(state.sweep_every));
        tokio::spawn(retain_limiters(state.clone()));
        tokio::spawn(funnel::reconcile_forever(state.clone()));
        tokio::spawn(webhooks::deliver_forever(
            state.clone(),
            opts.webhooks.clone(),
        ));
        tokio::spawn(webhooks::nurture_forever(state.clone()));
        tokio::spawn(calendar::scan::forever(
            state.clone(),
            opts.schedule_scan_every,
        ));
        Ok(state)
    }

    pub async fn hub(&self, id: &DropId) -> Result<Arc<DropHub>, AppError> {
        self.hubs
            .get(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no drop with id {id}")))
    }

    /// The hub named by a path segment (404 for a malformed id too).
    pub async fn hub_by_path(&self, id: &str) -> Result<Arc<DropHub>, AppError> {
        let id =
            DropId::parse(id).map_err(|_| AppError::NotFound(format!("no drop with id {id:?}")))?;
        self.hub(&id).await
    }

    /// Hands facts to the ledger's feed (a no-op without a ledger); never waits.
    pub fn record(&self, facts: Vec<Fact>) {
        if let Some(funnel) = &self.funnel {
            funnel.feed.push(facts);
        }
    }

    /// The ledger, or 503 `ledger_off` when the hub runs without one.
    pub fn ledger(&self) -> Result<&Ledger, AppError> {
        self.funnel
            .as_ref()
            .map(|f| &f.ledger)
            .ok_or(AppError::LedgerOff)
    }

    /// Phase one of shutdown: refuse readiness, tell every connection and hub to finish.
    pub fn begin_shutdown(&self) {
        self.draining.store(true, Ordering::Release);
        let _ = self.shutdown_tx.send(true);
    }
}

/// Forgets the clients the rate limiters have not seen for a while, every 60 sweeps.
async fn retain_limiters(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let every = state.sweep_every * 60;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        state.mint_limiter.retain_recent();
        state.admission.retain_recent();
    }
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.draining.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    if let Err(e) = state.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store unavailable", "error": e.to_string()})),
        );
    }
    if state.hubs.bus().is_some_and(|bus| !bus.is_connected()) {
        // Redis answers but this node hears nothing from the other nodes.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "bus unavailable"})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}

/// An unknown path: the API's 404 `not_found` (with its JSON body, like every error).
async fn no_route() -> AppError {
    AppError::NotFound("no such route (the API's routes: /api/docs)".into())
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(api::routes())
        .route("/ws/v1/drops/{id}", get(ws::upgrade))
        .merge(pages::routes().layer(CompressionLayer::new()))
        .route("/calendar.ics", get(calendar::feed))
        .route("/.well-known/jwks.json", get(crate::pass_tokens::jwks))
        .route("/coops/{id}/calendar.ics", get(calendar::coop::feed))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_http,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `signal` resolves, then shuts down in two phases: stop accepting and tell
/// every viewer (close frame 1001), then wait for connections to drain, at most the grace.
///
/// The accept loop is `axum::serve`'s, with one difference: hyper gets a timer, so the
/// header read timeout applies (a client trickling its headers is cut off; `axum::serve`
/// sets no timer, and without one hyper waits for headers forever).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let send_buffer = state.socket_send_buffer;
    let mut listener = listener.tap_io(move |tcp| {
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
    });
    let router = app(state.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.header_read_timeout);
    // `closing` tells the connections to finish; each holds a receiver of `open`, so
    // `open.closed()` resolves once the last one has ended.
    let (closing_tx, closing) = watch::channel(false);
    let (open, open_rx) = watch::channel(());
    let mut signal = std::pin::pin!(signal);
    loop {
        let (io, peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut signal => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(io), service)
            .with_upgrades();
        let mut closing = closing.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let done = tokio::select! {
                done = conn.as_mut() => done,
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    tracing::info!("shutting down: closing viewer connections");
    state.begin_shutdown();
    let _ = closing_tx.send(true);
    drop(open_rx);
    open.closed().await;
    let deadline = tokio::time::Instant::now() + state.shutdown_grace;
    while state.connections.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.connections.load(Ordering::Acquire);
    if left > 0 {
        tracing::warn!(left, "shutdown grace over; dropping the rest");
    }
    if let Some(funnel) = &state.funnel {
        // Phase two: what the feed holds goes to the ledger before the process ends.
        if !funnel.feed.flush(Duration::from_secs(5)).await {
            tracing::warn!("the ledger feed did not drain in 5 s; reconciliation restores claims");
        }
    }
    Ok(())
}
