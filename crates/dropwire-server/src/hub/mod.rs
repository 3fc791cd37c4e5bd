//! The fan-out hub: one per drop per node.
//!
//! Every broadcast goes through `DropHub::publish`, under the hub's lock: it takes the
//! next `seq`, serializes the message **once**, keeps the bytes in a bounded history (for
//! viewers resuming with `since`) and hands the same bytes to every connection through one
//! `tokio::sync::broadcast` ring. The ring is each connection's bounded send queue: a
//! viewer that falls more than `viewer_queue` broadcasts behind is dropped as slow, and no
//! viewer can delay another or grow memory.
//!
//! Each hub runs one task (`DropHub::run`) that fires cues on time (the timeline is
//! recomputed from the control log and the clock, never counted by ticks) and publishes
//! the coalesced figures (`figures`) — stock, leaderboard, viewer count — at most four
//! times a second.
//!
//! With Redis, several nodes serve one drop: `publish` then hands the broadcast to the
//! hub's [`Relay`], Redis sequences it, and the hub delivers what comes back from the bus
//! ([`DropHub::ingest`]), so every node's viewers see one `seq` order.
//!
//! [`Hubs`] holds a node's hubs: started on first use, evicted once idle (`registry`).

mod control;
mod figures;
mod registry;
mod task;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use dropwire_core::claim::LeaderEntry;
use dropwire_core::protocol::{Audience, DropSnapshot, LiveFigures, NextCue, ServerMsg, StockItem};
use dropwire_core::script::CueType;
use dropwire_core::timeline::{ClaimWindow, CueKey};
use dropwire_core::{ControlAction, DropId, DropRecord, DropState, Fact, TimelineView};
use dropwire_store::{Mark, RedisBus, Store, StoreError};
use tokio::sync::{Notify, broadcast, watch};

use self::figures::Audiences;
pub use self::figures::ViewerCounts;
pub use self::registry::Hubs;
pub(crate) use self::task::raised;

use crate::clock::Clock;
use crate::funnel::Feed;
use crate::metrics::Metrics;
use crate::relay::{self, Relay, Resend};

/// Broadcasts kept for viewers that resume with `since`.
/// Sequence numbers reserved from the store at a time.
const SEQ_BLOCK: u64 = 1 << 20;
/// The shortest gap between two coalesced publications of the figures.
const COALESCE: Duration = Duration::from_millis(250);

/// One serialized broadcast, shared by every connection.
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    pub published: Instant,
    pub text: Utf8Bytes,
}

/// What the hub needs from the rest of the server.
#[derive(Debug, Clone)]
pub struct HubCtx {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub viewer_queue: usize,
    /// Broadcasts kept per drop for viewers resuming with `since`.
    pub history: usize,
    pub shutdown: watch::Receiver<bool>,
    /// The cross-node bus, when the store is Redis (every node then sees every broadcast).
    pub bus: Option<RedisBus>,
    /// The funnel ledger's feed (drop states go there), unless the ledger is off.
    pub feed: Option<Feed>,
    /// How long a cue or state change is retried on the bus before it is given up.
    pub publish_patience: Duration,
}

struct Shared {
    record: Arc<DropRecord>,
    view: TimelineView,
    /// The time `view` was computed for.
    viewed_at_ms: u64,
    /// The last seq published; `seq_end` is the first one not reserved.
    seq: u64,
    seq_end: u64,
    spare_block: Option<u64>,
    history: VecDeque<Frame>,
    stock: Vec<StockItem>,
    leaderboard: Vec<LeaderEntry>,
    viewers_published: u64,
    /// When the viewer count last went out (or was reported to the bus).
    viewers_at: Option<tokio::time::Instant>,
    /// The viewer count over every node, as last heard on the bus.
    viewers_everywhere: Option<u64>,
}

/// How a joining viewer catches up.
#[derive(Debug)]
pub enum CatchUp {
    /// It saw everything up to now.
    Nothing,
    /// The broadcasts it missed, in order.
    Frames(Vec<Frame>),
    /// Too old (or no `since`): the whole state, as of `seq`.
    Snapshot(Utf8Bytes),
}

#[derive(Debug)]
pub struct Join {
    pub seq: u64,
    pub rx: broadcast::Receiver<Frame>,
    pub catch_up: CatchUp,
}

pub struct DropHub {
    pub id: DropId,
    ctx: HubCtx,
    shared: Mutex<Shared>,
    tx: broadcast::Sender<Frame>,
    timeline_changed: Notify,
    figures_changed: Notify,
    stock_dirty: AtomicBool,
    audiences: Audiences,
    relay: Option<Relay>,
    /// Set when the hub is retired (evicted) or the server shuts down: its tasks end.
    stop: watch::Sender<bool>,
    /// When the hub was last asked for, joined or left, or its state changed.
    last_used: Mutex<tokio::time::Instant>,
    /// References the hub's own tasks and the registry hold: more means someone uses it.
    own_refs: usize,
}

impl std::fmt::Debug for DropHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropHub")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DropHub {
    /// Builds the hub of a stored drop and starts its task.
    pub async fn start(ctx: HubCtx, record: DropRecord) -> Result<Arc<DropHub>, StoreError> {
        // With a bus, Redis sequences broadcasts; subscribe before reading where it stands,
        // so nothing published in between is missed.
        let (first, recent, events) = match &ctx.bus {
            Some(bus) => {
                let events = bus.subscribe(&record.id).await?;
                let (last, recent) = bus.recent(&record.id, ctx.history).await?;
                (last + 1, recent, Some(events))
            }
            None => {
                let first = ctx.store.reserve_seq(&record.id, SEQ_BLOCK).await?;
                (first, Vec::new(), None)
            }
        };
        let figures = ctx.store.figures(&record.id).await?;
        let now = ctx.clock.now_ms();
        let view = TimelineView::compute(&record.spec.script, &record.log, now);
        let stock = figures
            .stock
            .into_iter()
            .filter(|s| view.is_revealed(&s.sku))
            .collect();
        if let Some(feed) = &ctx.feed {
            feed.push(Fact::of_drop(&record, &view, None));
        }
        let (tx, _) = broadcast::channel(ctx.viewer_queue);
        let now_instant = Instant::now();
        let history = recent
            .into_iter()
            .map(|(seq, text)| Frame {
                seq,
                published: now_instant,
                text: Utf8Bytes::from(text),
            })
            .collect();
        let (relay, outgoing) = match &ctx.bus {
            Some(bus) => {
                let (relay, outgoing) = Relay::new(bus.clone());
                (Some(relay), Some(outgoing))
            }
            None => (None, None),
        };
        let hub = Arc::new(DropHub {
            id: record.id.clone(),
            shared: Mutex::new(Shared {
                record: Arc::new(record),
                view,
                viewed_at_ms: now,
                seq: first.saturating_sub(1),
                seq_end: if relay.is_some() {
                    u64::MAX
                } else {
                    first + SEQ_BLOCK
                },
                spare_block: None,
                history,
                stock,
                leaderboard: figures.leaderboard,
                viewers_published: 0,
                viewers_at: None,
                viewers_everywhere: None,
            }),
            ctx,
            tx,
            timeline_changed: Notify::new(),
            figures_changed: Notify::new(),
            stock_dirty: AtomicBool::new(false),
            audiences: Audiences::default(),
            own_refs: if relay.is_some() { 4 } else { 2 },
            relay,
            stop: watch::channel(false).0,
            last_used: Mutex::new(tokio::time::Instant::now()),
        });
        if let (Some(events), Some(outgoing)) = (events, outgoing) {
            // The relay's tasks end with the hub's (its `stop`).
            tokio::spawn(relay::read(Arc::clone(&hub), events, hub.stop.subscribe()));
            tokio::spawn(relay::write(
                Arc::clone(&hub),
                outgoing,
                hub.stop.subscribe(),
            ));
        }
        tokio::spawn(Arc::clone(&hub).run());
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        crate::sync::lock(&self.shared)
    }

    pub fn record(&self) -> Arc<DropRecord> {
        Arc::clone(&self.lock().record)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.ctx.store
    }

    pub fn now_ms(&self) -> u64 {
        self.ctx.clock.now_ms()
    }

    pub fn relay(&self) -> Option<&Relay> {
        self.relay.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// The last `seq` delivered to this node's viewers.
    pub fn last_seq(&self) -> u64 {
        self.lock().seq
    }

    /// The view at `now` (the timeline moves with the clock, not with the hub task).
    pub fn view_at(&self, now_ms: u64) -> (Arc<DropRecord>, TimelineView) {
        let record = self.record();
        let view = TimelineView::compute(&record.spec.script, &record.log, now_ms);
        (record, view)
    }

    /// Whether `sku` can be claimed at `now_ms`. The hub's last view answers while nothing
    /// is due before `now_ms` (the common case in a claim storm); otherwise it is recomputed.
    pub fn window(&self, sku: &str, now_ms: u64) -> ClaimWindow {
        {
            let sh = self.lock();
            let current = sh.view.next_change_ms().is_none_or(|t| now_ms < t);
            if current && sh.viewed_at_ms <= now_ms {
                return sh
                    .view
                    .window(sku, now_ms, sh.record.spec.early_access_ms());
            }
        }
        let (record, view) = self.view_at(now_ms);
        view.window(sku, now_ms, record.spec.early_access_ms())
    }

    /// Sequences, serializes once, remembers and fans out one broadcast. With a relay the
    /// broadcast goes to Redis instead (under `mark`), and comes back through [`Self::ingest`].
    fn publish(
        &self,
        sh: &mut Shared,
        mark: impl FnOnce() -> (Mark, Resend),
        build: impl FnOnce(u64, u64) -> ServerMsg,
    ) {
        if let Some(relay) = &self.relay {
            let (mark, resend) = mark();
            let msg = build(0, self.ctx.clock.now_ms());
            if let Err(e) = relay.send(&msg, mark, resend) {
                tracing::error!(drop = %self.id, error = %e, "cannot hand a broadcast to the bus");
            }
            return;
        }
        let started = Instant::now();
        if sh.seq + 1 >= sh.seq_end {
            if let Some(next) = sh.spare_block.take() {
                sh.seq = next - 1;
                sh.seq_end = next + SEQ_BLOCK;
            }
        }
        sh.seq += 1;
        let msg = build(sh.seq, self.ctx.clock.now_ms());
        let text = match serde_json::to_string(&msg) {
            Ok(s) => Utf8Bytes::from(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a broadcast");
                return;
            }
        };
        let frame = Frame {
            seq: sh.seq,
            published: started,
            text,
        };
        self.deliver(sh, frame);
    }

    /// Remembers a sequenced broadcast and hands it to every connection on this node.
    fn deliver(&self, sh: &mut Shared, frame: Frame) {
        let started = frame.published;
        if sh.history.len() >= self.ctx.history.max(1) {
            sh.history.pop_front();
        }
        sh.history.push_back(frame.clone());
        let receivers = self.tx.send(frame).unwrap_or(0);
        self.ctx.metrics.broadcasts.inc();
        self.ctx.metrics.messages_sent.inc_by(receivers as u64);
        self.ctx
            .metrics
            .publish_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Delivers a broadcast that came over the bus (from this node or another) as `seq`,
    /// keeping what snapshots show (stock, leaderboard, viewer count) up to date. The relay
    /// calls it in `seq` order; anything at or below the last `seq` is ignored.
    pub fn ingest(&self, seq: u64, text: String) {
        let msg = serde_json::from_str::<ServerMsg>(&text);
        let mut sh = self.lock();
        if seq <= sh.seq {
            return;
        }
        match msg {
            Ok(ServerMsg::Stock { items, .. }) => sh.stock = items,
            Ok(ServerMsg::Leaderboard { top, .. }) => sh.leaderboard = top,
            Ok(ServerMsg::Viewers { count, .. }) => sh.viewers_everywhere = Some(count),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(drop = %self.id, seq, error = %e, "an unreadable bus broadcast")
            }
        }
        sh.seq = seq;
        let frame = Frame {
            seq,
            published: Instant::now(),
            text: Utf8Bytes::from(text),
        };
        self.deliver(&mut sh, frame);
    }

    /// Publishes what changed on the timeline between the last view and `now`.
    fn refresh(&self, sh: &mut Shared, now_ms: u64) {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let state_changed = view.state != sh.view.state;
        let new_cues = if view.fired.starts_with(&sh.view.fired) {
            sh.view.fired.len()..view.fired.len()
        } else {
            0..0
        };
        if state_changed && view.state != DropState::Closed {
            self.publish_state(sh, &view);
        }
        let mut revealed = false;
        for n in new_cues {
            revealed |= self.publish_cue(sh, &view, n);
        }
        if state_changed && view.state == DropState::Closed {
            self.publish_state(sh, &view);
        }
        if state_changed {
            self.touch();
        }
        if let (true, Some(feed)) = (state_changed, &self.ctx.feed) {
            // The node closing the drop knows how many watched at most (over every node,
            // with Redis); the first node to write the fact gives the figure.
            let peak = Some(self.viewer_counts().peak);
            feed.push(Fact::of_drop(&sh.record, &view, peak));
        }
        sh.view = view;
        sh.viewed_at_ms = now_ms;
        if revealed {
            self.stock_changed();
        }
    }

    fn publish_state(&self, sh: &mut Shared, view: &TimelineView) {
        let record = Arc::clone(&sh.record);
        let next_cue = NextCue::of(view, &record.spec.script);
        let log_len = record.log.len() as u64;
        let mark = || {
            // The state and when it began: the same on every node.
            let at_ms = state_since(&record, view);
            let field = format!("state:{}:{at_ms}", view.state);
            let sets = match view.state {
                DropState::Live => vec!["timeline".to_owned()],
                DropState::Closed => vec!["closed".to_owned()],
                DropState::Scheduled | DropState::Paused => Vec::new(),
            };
            let mark = Mark::Once {
                field,
                log_len,
                at_ms,
                sets,
            };
            (mark, Resend::State)
        };
        self.publish(sh, mark, |seq, ts| ServerMsg::State {
            seq,
            ts,
            state: view.state,
            elapsed_s: view.elapsed_ms as f64 / 1000.0,
            next_cue,
        });
    }

    /// Publishes the `n`th fired cue of `view`; true if it revealed a product.
    fn publish_cue(&self, sh: &mut Shared, view: &TimelineView, n: usize) -> bool {
        let record = Arc::clone(&sh.record);
        let Some(f) = view.fired.get(n) else {
            return false;
        };
        let item = match (f.cue.kind, &f.cue.sku) {
            (CueType::Reveal, Some(sku)) => record.spec.item(sku).cloned().map(Box::new),
            _ => None,
        };
        let revealed = item.is_some();
        let opens = item.as_ref().map(|i| i.sku.clone());
        let early = record.spec.early_access_ms();
        let public_ms = (revealed && early > 0).then(|| f.at_ms + early);
        let log_len = record.log.len() as u64;
        let mark = || {
            // Which cue (a script cue fires once; an ad-hoc one is its log entry) and when:
            // the same on every node, however the nodes' clocks order an ad-hoc fire
            // among the cues around it.
            let field = match f.key {
                CueKey::Script(i) => format!("cue:s{i}:{}", f.at_ms),
                CueKey::AdHoc(pos) => format!("cue:a{pos}:{}", f.at_ms),
            };
            // A reveal opens its SKU's claims in Redis too (the claim script checks).
            let sets = opens
                .map(|sku| vec![format!("open:{sku}")])
                .unwrap_or_default();
            let mark = Mark::Once {
                field,
                log_len,
                at_ms: f.at_ms,
                sets,
            };
            (mark, Resend::CuesFrom(f.at_ms))
        };
        self.publish(sh, mark, |seq, ts| ServerMsg::Cue {
            seq,
            ts,
            index: f.index(),
            cue: f.cue.clone(),
            at_ms: f.at_ms,
            item,
            public_ms,
            next_cue: NextCue::of(view, &record.spec.script),
        });
        revealed
    }

    /// Subscribes a viewer: it gets every broadcast after `seq`, and catches up from `since`.
    pub fn join(&self, since: Option<u64>, now_ms: u64) -> Join {
        let sh = self.lock();
        let rx = self.tx.subscribe();
        let seq = sh.seq;
        let catch_up = match since {
            Some(s) if s == seq => CatchUp::Nothing,
            Some(s) if s < seq && sh.history.front().is_some_and(|f| f.seq <= s + 1) => {
                CatchUp::Frames(sh.history.iter().filter(|f| f.seq > s).cloned().collect())
            }
            _ => {
                let drop = self.snapshot_locked(&sh, Audience::Viewer, now_ms);
                let msg = ServerMsg::Snapshot {
                    seq,
                    drop: Box::new(drop),
                };
                // Never an empty frame: a snapshot that cannot be written (a bug, logged)
                // leaves the viewer with the broadcasts from `seq` on.
                match crate::encode::to_json("a snapshot", &msg) {
                    Ok(text) => CatchUp::Snapshot(Utf8Bytes::from(text)),
                    Err(_) => CatchUp::Nothing,
                }
            }
        };
        Join { seq, rx, catch_up }
    }

    fn snapshot_locked(&self, sh: &Shared, audience: Audience, now_ms: u64) -> DropSnapshot {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let live = LiveFigures {
            stock: sh.stock.clone(),
            leaderboard: sh.leaderboard.clone(),
            viewers: sh
                .viewers_everywhere
                .unwrap_or_else(|| self.audiences.now.load(Ordering::Relaxed)),
        };
        DropSnapshot::build(&sh.record, &view, live, now_ms, audience)
    }

    /// The drop as `GET /api/v1/drops/{id}` shows it, with fresh figures from the store.
    pub async fn admin_snapshot(&self) -> Result<DropSnapshot, StoreError> {
        let figures = self.ctx.store.figures(&self.id).await?;
        let now = self.ctx.clock.now_ms();
        let sh = self.lock();
        let mut snap = self.snapshot_locked(&sh, Audience::Admin, now);
        snap.stock = figures.stock;
        snap.leaderboard = figures.leaderboard;
        Ok(snap)
    }
}

/// When the drop entered its current state: the close, or the last start, pause or resume.
fn state_since(record: &DropRecord, view: &TimelineView) -> u64 {
    if view.state == DropState::Closed {
        if let Some(at) = view.closed_ms {
            return at;
        }
    }
    record
        .log
        .iter()
        .rev()
        .find(|e| !matches!(e.action, ControlAction::Fire { .. }))
        .map_or(0, |e| e.at_ms)
}
