//! The fan-out hub: one per drop per node.
//!
//! Every broadcast goes through `DropHub::publish`, under the hub's lock: it takes the
//! next `seq`, serializes the message **once**, keeps the bytes in a bounded history (for
//! viewers resuming with `since`) and hands the same bytes, through a
//! `tokio::sync::broadcast` ring, to the hub's fan-out writer (`fanout`): it writes each
//! broadcast into every viewer's socket without waiting, and wakes the connection of a
//! viewer it could not write to, which catches up from the history. A viewer that falls more
//! than `viewer_queue` broadcasts behind is dropped as slow, and no viewer can delay another
//! or grow memory.
//!
//! Each hub runs one task (`DropHub::run`) that fires cues on time (the timeline is
//! recomputed from the control log and the clock, never counted by ticks) and publishes
//! the coalesced figures (`figures`) — stock, leaderboard, viewer count — at most four
//! times a second.
//!
//! How a broadcast is numbered is the hub's mode (`sequencer`): alone, the hub numbers it
//! from blocks reserved in the store and delivers it at once; with a bus (several nodes on
//! Redis), it hands it to the bus (`relay`), which numbers it, and delivers what comes back
//! (`DropHub::ingest`), so every node's viewers see one `seq` order.
//!
//! - `fanout`: the viewers' outlets and the writer that fills them.
//! - `cues`: the timeline's broadcasts (state changes, cues); `figures`: the coalesced
//!   figures; `control`: the control log; `task`: the hub's task.
//! - `claims`: a viewer's claims and unique coupons, from the window check to the answer.
//! - `chat`: a viewer's chat message, from its checks to the coalesced `chat` broadcast
//!   (one per drop per 100 ms tick at most), and the chat in snapshots.
//! - `moderation`: the host's settings, mutes, deletes and pin (control-log entries),
//!   and the host's own messages.
//! - `quests`: quests that award points (`here`, claims and redemptions in a window).
//! - [`Hubs`] holds a node's hubs: started on first use, evicted once idle (`registry`);
//!   `sweeper` returns expired holds to stock and evicts idle hubs.

mod chat;
mod claims;
mod control;
mod cues;
mod fanout;
mod figures;
mod moderation;
mod quests;
mod registry;
mod relay;
mod sequencer;
mod sweeper;
mod task;

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use dropwire_core::claim::LeaderEntry;
use dropwire_core::protocol::{Audience, DropSnapshot, LiveFigures, ServerMsg, StockItem};
use dropwire_core::timeline::ClaimWindow;
use dropwire_core::{DropId, DropRecord, Fact, TimelineView};
use dropwire_store::{Bus, Mark, Store, StoreError};
use tokio::sync::{Notify, broadcast, watch};

pub use self::chat::{CHAT_TICK, ChatLimits, chat_tick};
use self::fanout::Outlets;
pub use self::fanout::{Outlet, Registration, WsSink};
use self::figures::NodeViewers;
pub use self::figures::ViewerCounts;
pub use self::moderation::{ChatAdmin, ChatSettingsView, DEFAULT_MUTE_S};
pub use self::registry::Hubs;
pub use self::relay::PUBLISH_PATIENCE;
use self::relay::Resend;
use self::sequencer::Sequencer;
pub(crate) use self::task::raised;

use crate::auth::Keys;
use crate::clock::Clock;
use crate::funnel::Feed;
use crate::metrics::Metrics;

/// The shortest gap between two coalesced publications of the figures.
const COALESCE: Duration = Duration::from_millis(250);

/// One serialized broadcast, shared by every connection.
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    /// The seq of the broadcast delivered before it on this node.
    pub prev: u64,
    pub published: Instant,
    pub text: Utf8Bytes,
}

/// What the hub needs from the rest of the server.
#[derive(Debug, Clone)]
pub struct HubCtx {
    pub store: Arc<dyn Store>,
    /// Viewer-token and coupon-code keys (for the follow-up a claim answer carries).
    pub keys: Arc<Keys>,
    pub clock: Clock,
    pub metrics: Metrics,
    pub viewer_queue: usize,
    /// Broadcasts kept per drop for viewers resuming with `since`.
    pub history: usize,
    pub shutdown: watch::Receiver<bool>,
    /// The cross-node bus, when several nodes serve the drops (every node then sees every
    /// broadcast): Redis's, or in tests the in-memory one.
    pub bus: Option<Arc<dyn Bus>>,
    /// The funnel ledger's feed (drop states go there), unless the ledger is off.
    pub feed: Option<Feed>,
    /// How long a cue or state change is retried on the bus before it is given up.
    pub publish_patience: Duration,
    /// The chat's limits.
    pub chat: ChatLimits,
}

/// What the hub's lock guards: the drop as this node last saw it, and what it delivered.
struct HubState {
    record: Arc<DropRecord>,
    view: TimelineView,
    /// The time `view` was computed for.
    viewed_at_ms: u64,
    /// The last seq delivered to this node's viewers.
    seq: u64,
    /// The seq of the last frame handed to the writer (`seq`, once delivered).
    delivered: u64,
    /// The latest broadcasts: `history` of them for viewers resuming with `since`, and at
    /// least `viewer_queue` for viewers catching up.
    history: VecDeque<Frame>,
    /// The figures as last delivered (what snapshots show).
    stock: Vec<StockItem>,
    leaderboard: Vec<LeaderEntry>,
    /// When the viewer count last went out (or was reported to the bus).
    viewers_at: Option<tokio::time::Instant>,
    /// The viewer count over every node, as last heard on the bus.
    viewers_everywhere: Option<u64>,
    /// The chat: the next tick's messages, the latest ones, the viewers' pace.
    chat: chat::ChatBook,
}

impl HubState {
    /// Whether `msg` is a figure equal to the one delivered last (on one node, a figure
    /// goes out only when it changed).
    fn delivered_already(&self, msg: &ServerMsg) -> bool {
        match msg {
            ServerMsg::Stock { items, .. } => *items == self.stock,
            ServerMsg::Leaderboard { top, .. } => *top == self.leaderboard,
            _ => false,
        }
    }

    /// Keeps what snapshots show up to date with a broadcast being delivered.
    fn note(&mut self, msg: ServerMsg) {
        self.chat.note(&msg);
        match msg {
            ServerMsg::Stock { items, .. } => self.stock = items,
            ServerMsg::Leaderboard { top, .. } => self.leaderboard = top,
            _ => {}
        }
    }
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
    /// The viewer's outlet, registered with the hub's writer as having every broadcast up to
    /// `seq`, its sink still with the connection.
    pub outlet: Registration,
    pub catch_up: CatchUp,
}

pub struct DropHub {
    pub id: DropId,
    ctx: HubCtx,
    state: Mutex<HubState>,
    tx: broadcast::Sender<Frame>,
    /// The viewers' outlets the writer fills.
    outlets: Arc<Outlets>,
    timeline_changed: Notify,
    figures_changed: Notify,
    /// The chat buffer went from empty to not: a tick is due.
    chat_waiting: Notify,
    stock_dirty: AtomicBool,
    viewers: NodeViewers,
    /// The hub's mode: local, or relayed through the bus.
    sequencer: Box<dyn Sequencer>,
    /// Set when the hub is retired (evicted) or the server shuts down: its tasks end.
    stop: watch::Sender<bool>,
    /// When the hub was last asked for, joined or left, or its state changed.
    last_used: Mutex<tokio::time::Instant>,
    /// When the control log was last re-read for a claim about to be refused as not open
    /// ([`DropHub::recheck_log`]); the async lock makes the re-reads one at a time.
    log_recheck: tokio::sync::Mutex<Option<Instant>>,
    /// References the hub's own tasks and the registry hold: more means someone uses it.
    own_refs: usize,
    /// Other nodes share the drop: they may change its control log behind this node's back.
    shared: bool,
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
        let opened = sequencer::open(&ctx, &record.id).await?;
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
        // A hub joining other nodes knows the latest messages from the broadcasts it reads.
        let chat = chat::ChatBook::from_history(opened.recent.iter().map(|(_, t)| t.as_str()));
        let mut prev = None;
        let history = opened
            .recent
            .into_iter()
            .map(|(seq, text)| Frame {
                seq,
                prev: prev.replace(seq).unwrap_or(seq.saturating_sub(1)),
                published: now_instant,
                text: Utf8Bytes::from(text),
            })
            .collect();
        let sequencer = opened.sequencer;
        let hub = Arc::new(DropHub {
            id: record.id.clone(),
            state: Mutex::new(HubState {
                record: Arc::new(record),
                view,
                viewed_at_ms: now,
                seq: opened.last,
                delivered: opened.last,
                history,
                stock,
                leaderboard: figures.leaderboard,
                viewers_at: None,
                viewers_everywhere: None,
                chat,
            }),
            ctx,
            tx,
            outlets: Arc::default(),
            timeline_changed: Notify::new(),
            figures_changed: Notify::new(),
            chat_waiting: Notify::new(),
            stock_dirty: AtomicBool::new(false),
            viewers: NodeViewers::default(),
            own_refs: 2 + opened.own_tasks,
            shared: opened.shared,
            sequencer,
            stop: watch::channel(false).0,
            last_used: Mutex::new(tokio::time::Instant::now()),
            log_recheck: tokio::sync::Mutex::new(None),
        });
        // One writer per worker thread, each for its share of the viewers, so a fan-out
        // uses every core (one writer alone: the last viewer waits for one core's walk).
        let writers = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        for shard in 0..writers as u64 {
            tokio::spawn(fanout::write(
                fanout::Share {
                    outlets: Arc::clone(&hub.outlets),
                    shard,
                    of: writers as u64,
                },
                hub.tx.subscribe(),
                hub.stop.subscribe(),
                hub.ctx.metrics.clone(),
            ));
        }
        hub.sequencer.start(&hub);
        tokio::spawn(Arc::clone(&hub).run());
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        crate::sync::lock(&self.state)
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

    /// The tokio instant at which the hub's clock reads `at_ms`.
    pub fn instant_at(&self, at_ms: u64) -> tokio::time::Instant {
        self.ctx.clock.instant_at(at_ms)
    }

    /// Fair start: the time of the draw a claim of `sku` at `now_ms` belongs to (`None`
    /// when the SKU has no fair start or is not open), from the timeline.
    pub fn draw_at(&self, sku: &str, now_ms: u64) -> Option<u64> {
        let fair = {
            let sh = self.lock();
            let item = sh.record.spec.inventory.iter().find(|i| i.sku == sku);
            item.map_or(0, |i| i.fair_start_ms)
        };
        if fair == 0 {
            return None;
        }
        let (record, view) = self.view_at(now_ms);
        view.draw_at_ms(sku, now_ms, record.spec.early_access_ms(), fair)
    }

    /// Sequences, serializes once, remembers and fans out one broadcast, as the hub's mode
    /// does it (`sequencer`): at once on this node, or through the bus (under `mark`),
    /// coming back through [`Self::ingest`].
    fn publish(
        &self,
        sh: &mut HubState,
        mark: impl Fn() -> (Mark, Resend),
        build: impl Fn(u64, u64) -> ServerMsg,
    ) {
        self.sequencer.publish(self, sh, &mark, &build);
    }

    /// Remembers a sequenced broadcast and hands it to the writer (`fanout`), which writes
    /// it to every connection on this node (and counts those).
    fn deliver(&self, sh: &mut HubState, seq: u64, started: Instant, text: Utf8Bytes) {
        let frame = Frame {
            seq,
            prev: sh.delivered,
            published: started,
            text,
        };
        sh.delivered = seq;
        if sh.history.len() >= self.ctx.history.max(self.ctx.viewer_queue).max(1) {
            sh.history.pop_front();
        }
        sh.history.push_back(frame.clone());
        let _ = self.tx.send(frame);
        self.ctx.metrics.broadcasts.inc();
        self.ctx
            .metrics
            .publish_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Delivers a broadcast that came over the bus (from this node or another) as `seq`,
    /// keeping what snapshots show (stock, leaderboard, viewer count) up to date. The relay
    /// calls it in `seq` order; anything at or below the last `seq` is ignored.
    pub(super) fn ingest(&self, seq: u64, text: String) {
        let msg = serde_json::from_str::<ServerMsg>(&text);
        let mut sh = self.lock();
        if seq <= sh.seq {
            return;
        }
        match msg {
            Ok(ServerMsg::Viewers { count, .. }) => sh.viewers_everywhere = Some(count),
            Ok(msg) => sh.note(msg),
            Err(e) => {
                tracing::warn!(drop = %self.id, seq, error = %e, "an unreadable bus broadcast")
            }
        }
        sh.seq = seq;
        self.deliver(&mut sh, seq, Instant::now(), Utf8Bytes::from(text));
    }

    /// The broadcasts after `last_seq`, for a viewer catching up (none when it has them
    /// all); `None` when it is too far behind: more than `viewer_queue` broadcasts, or
    /// beyond the history.
    pub fn frames_after(&self, last_seq: u64) -> Option<Vec<Frame>> {
        let sh = self.lock();
        if last_seq >= sh.delivered {
            return Some(Vec::new());
        }
        let start = sh.history.partition_point(|f| f.seq <= last_seq);
        let first = sh.history.get(start)?;
        if first.prev > last_seq || sh.history.len() - start > self.ctx.viewer_queue {
            return None;
        }
        Some(sh.history.range(start..).cloned().collect())
    }

    /// Every broadcast delivered on this node from now on, as the fan-out writer gets them
    /// (for observers in the process, and tests).
    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }

    /// Subscribes connection `conn`: its outlet gets every broadcast after `seq`, and it
    /// catches up from `since` (within the last `history` broadcasts).
    pub fn join(&self, conn: u64, since: Option<u64>, now_ms: u64) -> Join {
        let mut sh = self.lock();
        let seq = sh.seq;
        let outlet = self.outlets.register(conn, seq);
        let kept = sh.history.len().saturating_sub(self.ctx.history);
        let catch_up = match since {
            Some(s) if s == seq => CatchUp::Nothing,
            Some(s) if s < seq && sh.history.get(kept).is_some_and(|f| f.seq <= s + 1) => {
                let frames = sh.history.range(kept..).filter(|f| f.seq > s);
                CatchUp::Frames(frames.cloned().collect())
            }
            _ => {
                let drop = self.snapshot_locked(&mut sh, Audience::Viewer, now_ms);
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
        Join {
            seq,
            outlet,
            catch_up,
        }
    }

    fn snapshot_locked(&self, sh: &mut HubState, audience: Audience, now_ms: u64) -> DropSnapshot {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let live = LiveFigures {
            stock: sh.stock.clone(),
            leaderboard: sh.leaderboard.clone(),
            viewers: sh
                .viewers_everywhere
                .unwrap_or_else(|| self.local_viewers()),
        };
        let mut snap = DropSnapshot::build(&sh.record, &view, live, now_ms, audience);
        snap.chat = self.chat_view(sh, false);
        snap
    }

    /// The drop as `GET /api/v1/drops/{id}` shows it, with fresh figures from the store.
    pub async fn admin_snapshot(&self) -> Result<DropSnapshot, StoreError> {
        let figures = self.ctx.store.figures(&self.id).await?;
        let now = self.ctx.clock.now_ms();
        let mut sh = self.lock();
        let mut snap = self.snapshot_locked(&mut sh, Audience::Admin, now);
        snap.stock = figures.stock;
        snap.leaderboard = figures.leaderboard;
        Ok(snap)
    }
}
