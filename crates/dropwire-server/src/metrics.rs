//! Prometheus metrics (`/metrics`) and the HTTP request counter middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::app::AppState;

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub connections: IntGauge,
    /// Tasks alive in the tokio runtime, read at each scrape (a leak shows as growth).
    pub runtime_tasks: IntGauge,
    pub connections_total: IntCounter,
    pub messages_sent: IntCounter,
    pub broadcasts: IntCounter,
    pub publish_seconds: Histogram,
    pub delivery_seconds: Histogram,
    pub slow_disconnects: IntCounter,
    pub flood_disconnects: IntCounter,
    pub frame_errors: IntCounterVec,
    /// Chat messages by outcome: `sent`, or the refusal's reason.
    pub chat_messages: IntCounterVec,
    pub claims: IntCounterVec,
    /// Time the store took to decide a claim (the window check before it is not counted).
    pub claim_store_seconds: Histogram,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    /// Cross-node bus events, by what happened (published, duplicate, stale, gap_filled, lost, failed).
    pub bus: IntCounterVec,
    /// Funnel facts handed to the ledger's feed, by what became of them.
    pub ledger_facts: IntCounterVec,
    /// Fact batches waiting for the ledger writer.
    pub ledger_backlog: IntGauge,
    /// Facts the reconciliation found missing from the ledger and wrote.
    pub ledger_reconciled: IntCounter,
    /// Webhook attempts, by what became of the message.
    pub webhook_deliveries: IntCounterVec,
    pub webhook_seconds: Histogram,
    /// Webhook messages waiting for delivery, over every endpoint.
    pub webhook_backlog: IntGauge,
    /// Webhook messages in the dead letter list.
    pub webhook_dead: IntGauge,
    /// Nurture steps reached, by outcome.
    pub nurture: IntCounterVec,
    /// How many frames a sampled viewer is behind when a broadcast is written to it.
    pub queue_lag: Histogram,
    /// Store calls by operation (Redis round trips, or the embedded journal).
    pub store_seconds: HistogramVec,
    /// Store calls that failed in the backend, by operation.
    pub store_errors: IntCounterVec,
    /// Units left per SKU of each drop loaded here (set at each scrape).
    pub stock_left: IntGaugeVec,
    /// Holds open now, per drop loaded here (set at each scrape).
    pub holds: IntGaugeVec,
    /// This node's viewers of each drop loaded here (set at each scrape).
    pub drop_viewers: IntGaugeVec,
    /// Viewer connections refused after the handshake, by reason (rate, concurrent).
    pub refusals: IntCounterVec,
    /// Cues and state changes given up after retrying the bus for the publish patience.
    pub publish_failures: IntCounterVec,
    /// Drops due to start by themselves, by what this node did: `started` (its start was
    /// kept), `elsewhere` (another node or the streamer came first), `missed` (too late),
    /// `failed` (the store refused; retried).
    pub schedule_starts: IntCounterVec,
    /// Drop hubs loaded on this node (set at each scrape).
    pub hubs: IntGauge,
}

fn must<T>(r: Result<T, prometheus::Error>) -> T {
    // Metric names and labels are fixed at compile time; a failure is a programming error.
    r.expect("metric definition")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("dropwire".into()), None).expect("registry");
        let buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let m = Metrics {
            connections: must(IntGauge::new("connections", "Viewer WebSocket connections open now")),
            runtime_tasks: must(IntGauge::new("runtime_tasks", "Tasks alive in the hub's tokio runtime, read at the scrape")),
            connections_total: must(IntCounter::new("connections_total", "Viewer WebSocket connections accepted")),
            messages_sent: must(IntCounter::new("messages_sent_total", "Frames handed to viewer connections (broadcast copies and replies)")),
            broadcasts: must(IntCounter::new("broadcasts_total", "Broadcasts published (each serialized once)")),
            publish_seconds: must(Histogram::with_opts(
                HistogramOpts::new("broadcast_publish_seconds", "Time to sequence, serialize and hand a broadcast to the hub's fan-out writer").buckets(buckets.clone()),
            )),
            delivery_seconds: must(Histogram::with_opts(
                HistogramOpts::new("broadcast_fanout_seconds", "Time from publishing a broadcast to writing it to a viewer's socket (sampled viewers)").buckets(buckets.clone()),
            )),
            slow_disconnects: must(IntCounter::new("slow_consumer_disconnects_total", "Viewers dropped for falling behind")),
            flood_disconnects: must(IntCounter::new("flood_disconnects_total", "Viewers dropped for flooding")),
            frame_errors: must(IntCounterVec::new(Opts::new("frame_errors_total", "Client frames refused, by error code"), &["code"])),
            chat_messages: must(IntCounterVec::new(Opts::new("chat_messages_total", "Chat messages over the WebSocket, by outcome (sent, or the refusal reason)"), &["outcome"])),
            claims: must(IntCounterVec::new(Opts::new("claims_total", "Claim results, by result"), &["result"])),
            claim_store_seconds: must(Histogram::with_opts(
                HistogramOpts::new("claim_store_seconds", "Time from asking the store for a claim to its answer (journal fsync or Redis script, batching included)").buckets(buckets.clone()),
            )),
            http_requests: must(IntCounterVec::new(Opts::new("http_requests_total", "HTTP requests by route and status"), &["route", "status"])),
            http_seconds: must(HistogramVec::new(HistogramOpts::new("http_request_seconds", "HTTP request time by route").buckets(buckets.clone()), &["route"])),
            bus: must(IntCounterVec::new(Opts::new("bus_events_total", "Cross-node bus (Redis): publications and what became of them, gaps filled from the stream, broadcasts lost"), &["event"])),
            ledger_facts: must(IntCounterVec::new(Opts::new("ledger_facts_total", "Funnel facts fed to the ledger, by outcome (recorded, duplicate, dropped: the feed was full, failed: the database refused them)"), &["outcome"])),
            ledger_backlog: must(IntGauge::new("ledger_backlog", "Fact batches queued for the ledger writer")),
            ledger_reconciled: must(IntCounter::new("ledger_reconciled_total", "Facts the reconciliation with the store found missing from the ledger and wrote")),
            webhook_deliveries: must(IntCounterVec::new(Opts::new("webhook_deliveries_total", "Webhook attempts by result (delivered, failed: will be retried, dead: out of tries or 410)"), &["result"])),
            webhook_seconds: must(Histogram::with_opts(
                HistogramOpts::new("webhook_request_seconds", "Time a webhook request took, to its answer or failure").buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0]),
            )),
            webhook_backlog: must(IntGauge::new("webhook_backlog", "Webhook messages waiting for delivery (pending), over every endpoint")),
            webhook_dead: must(IntGauge::new("webhook_dead_letters", "Webhook messages that ran out of tries (the dead letter list)")),
            nurture: must(IntCounterVec::new(Opts::new("nurture_steps_total", "Nurture steps reached, by outcome (offered, no_consent, erased)"), &["outcome"])),
            queue_lag: must(Histogram::with_opts(
                HistogramOpts::new("viewer_queue_lag_frames", "Frames a sampled viewer is behind when a broadcast is written to it (closed 4008 past --viewer-queue)").buckets(vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
            )),
            store_seconds: must(HistogramVec::new(HistogramOpts::new("store_seconds", "Store calls by operation (a Redis round trip or the embedded journal)").buckets(buckets), &["op"])),
            store_errors: must(IntCounterVec::new(Opts::new("store_errors_total", "Store calls that failed in the backend (unreachable, timed out, refused), by operation"), &["op"])),
            stock_left: must(IntGaugeVec::new(Opts::new("stock_left", "Units left per SKU of each drop not yet closed, as this node reads them at the scrape"), &["drop", "sku"])),
            holds: must(IntGaugeVec::new(Opts::new("holds", "Holds open now (claimed, neither redeemed nor expired) per drop not yet closed"), &["drop"])),
            drop_viewers: must(IntGaugeVec::new(Opts::new("drop_viewers", "This node's viewers of each drop not yet closed"), &["drop"])),
            refusals: must(IntCounterVec::new(Opts::new("connection_refusals_total", "Viewer connections refused: closed 1013 at once as the client opened too many this minute (rate) or holds too many (concurrent), or 503 before the upgrade while --max-handshakes are joining (busy)"), &["reason"])),
            publish_failures: must(IntCounterVec::new(Opts::new("publish_failures_total", "Cues (cue) and state changes (state) this node could not publish on the bus (Redis) within the publish patience, and gave up"), &["kind"])),
            schedule_starts: must(IntCounterVec::new(Opts::new("schedule_starts_total", "Drops due to start by themselves (auto_start), by what this node did: started (its start was kept), elsewhere (another node or the streamer came first), missed (starts_at more than the script's length ago when the hub loaded), failed (the store refused; retried every second)"), &["outcome"])),
            hubs: must(IntGauge::new("hubs_loaded", "Drop hubs loaded on this node: open drops, and closed ones until their idle grace is over (set at each scrape)")),
            registry,
        };
        let r = &m.registry;
        must(r.register(Box::new(m.connections.clone())));
        must(r.register(Box::new(m.runtime_tasks.clone())));
        must(r.register(Box::new(m.connections_total.clone())));
        must(r.register(Box::new(m.messages_sent.clone())));
        must(r.register(Box::new(m.broadcasts.clone())));
        must(r.register(Box::new(m.publish_seconds.clone())));
        must(r.register(Box::new(m.delivery_seconds.clone())));
        must(r.register(Box::new(m.slow_disconnects.clone())));
        must(r.register(Box::new(m.flood_disconnects.clone())));
        must(r.register(Box::new(m.frame_errors.clone())));
        must(r.register(Box::new(m.chat_messages.clone())));
        must(r.register(Box::new(m.claims.clone())));
        must(r.register(Box::new(m.claim_store_seconds.clone())));
        must(r.register(Box::new(m.http_requests.clone())));
        must(r.register(Box::new(m.http_seconds.clone())));
        must(r.register(Box::new(m.bus.clone())));
        must(r.register(Box::new(m.ledger_facts.clone())));
        must(r.register(Box::new(m.ledger_backlog.clone())));
        must(r.register(Box::new(m.ledger_reconciled.clone())));
        must(r.register(Box::new(m.webhook_deliveries.clone())));
        must(r.register(Box::new(m.webhook_seconds.clone())));
        must(r.register(Box::new(m.webhook_backlog.clone())));
        must(r.register(Box::new(m.webhook_dead.clone())));
        must(r.register(Box::new(m.nurture.clone())));
        must(r.register(Box::new(m.queue_lag.clone())));
        must(r.register(Box::new(m.store_seconds.clone())));
        must(r.register(Box::new(m.store_errors.clone())));
        must(r.register(Box::new(m.stock_left.clone())));
        must(r.register(Box::new(m.holds.clone())));
        must(r.register(Box::new(m.drop_viewers.clone())));
        must(r.register(Box::new(m.refusals.clone())));
        must(r.register(Box::new(m.publish_failures.clone())));
        must(r.register(Box::new(m.schedule_starts.clone())));
        must(r.register(Box::new(m.hubs.clone())));
        must(r.register(Box::new(crate::encode::failures().clone())));
        for outcome in ["started", "elsewhere", "missed", "failed"] {
            m.schedule_starts.with_label_values(&[outcome]).inc_by(0);
        }
        for kind in ["cue", "state"] {
            m.publish_failures.with_label_values(&[kind]).inc_by(0);
        }
        for reason in ["rate", "concurrent", "busy"] {
            m.refusals.with_label_values(&[reason]).inc_by(0);
        }
        let build = must(IntGaugeVec::new(
            Opts::new("build_info", "The running build (always 1)"),
            &["version"],
        ));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        must(r.register(Box::new(build)));
        // Outcomes that may not have happened yet are present at zero: a rate over them is
        // 0, not "no data", on a dashboard or in an alert.
        for result in [
            "ok",
            "sold_out",
            "limit_reached",
            "entered",
            "not_open",
            "closed",
            "unauthorized",
            "rate_limited",
            "unavailable",
        ] {
            m.claims.with_label_values(&[result]).inc_by(0);
        }
        for event in [
            "published",
            "duplicate",
            "stale",
            "failed",
            "rolled_back",
            "gap_filled",
            "lost",
        ] {
            m.bus.with_label_values(&[event]).inc_by(0);
        }
        for result in ["delivered", "failed", "dead"] {
            m.webhook_deliveries.with_label_values(&[result]).inc_by(0);
        }
        for outcome in ["recorded", "duplicate", "dropped", "failed"] {
            m.ledger_facts.with_label_values(&[outcome]).inc_by(0);
        }
        m
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics`: the counters, and the live figures of each drop loaded here.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.hubs.gauge_drops(&state.metrics).await;
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    state
        .metrics
        .runtime_tasks
        .set(i64::try_from(tasks).unwrap_or(i64::MAX));
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Counts every request by its route template (never the raw path, to bound label values).
pub async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .http_seconds
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .http_requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    resp
}
