//! The fan-out hub: one per drop per node.
//!
//! Every broadcast goes through [`DropHub::publish`], under the hub's lock: it takes the
//! next `seq`, serializes the message **once**, keeps the bytes in a bounded history (for
//! viewers resuming with `since`) and hands the same bytes to every connection through one
//! `tokio::sync::broadcast` ring. The ring is each connection's bounded send queue: a
//! viewer that falls more than `viewer_queue` broadcasts behind is dropped as slow, and no
//! viewer can delay another or grow memory.
//!
//! Each hub runs one task ([`DropHub::run`]) that fires cues on time (the timeline is
//! recomputed from the control log and the clock, never counted by ticks) and publishes
//! the coalesced figures — stock, leaderboard, viewer count — at most four times a second.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use dropwire_core::claim::LeaderEntry;
use dropwire_core::protocol::{Audience, DropSnapshot, LiveFigures, NextCue, ServerMsg, StockItem};
use dropwire_core::script::CueType;
use dropwire_core::timeline::ClaimWindow;
use dropwire_core::{ControlAction, ControlEntry, DropId, DropRecord, DropState, TimelineView};
use dropwire_store::{Store, StoreError};
use tokio::sync::{Notify, broadcast, watch};

use crate::clock::Clock;
use crate::error::AppError;
use crate::metrics::Metrics;

/// Broadcasts kept for viewers that resume with `since`.
const HISTORY: usize = 1024;
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
    pub shutdown: watch::Receiver<bool>,
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

/// Viewer figures of one drop on this node.
#[derive(Debug, Default)]
struct Audiences {
    now: AtomicU64,
    peak: AtomicU64,
    anonymous_total: AtomicU64,
    known: Mutex<HashSet<String>>,
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
}

impl std::fmt::Debug for DropHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropHub")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Viewer counts for `GET …/stats`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ViewerCounts {
    pub now: u64,
    pub peak: u64,
    pub unique: u64,
}

impl DropHub {
    /// Builds the hub of a stored drop and starts its task.
    pub async fn start(ctx: HubCtx, record: DropRecord) -> Result<Arc<DropHub>, StoreError> {
        let first = ctx.store.reserve_seq(&record.id, SEQ_BLOCK).await?;
        let figures = ctx.store.figures(&record.id).await?;
        let now = ctx.clock.now_ms();
        let view = TimelineView::compute(&record.spec.script, &record.log, now);
        let stock = figures
            .stock
            .into_iter()
            .filter(|s| view.is_revealed(&s.sku))
            .collect();
        let (tx, _) = broadcast::channel(ctx.viewer_queue);
        let hub = Arc::new(DropHub {
            id: record.id.clone(),
            shared: Mutex::new(Shared {
                record: Arc::new(record),
                view,
                viewed_at_ms: now,
                seq: first.saturating_sub(1),
                seq_end: first + SEQ_BLOCK,
                spare_block: None,
                history: VecDeque::with_capacity(64),
                stock,
                leaderboard: figures.leaderboard,
                viewers_published: 0,
            }),
            ctx,
            tx,
            timeline_changed: Notify::new(),
            figures_changed: Notify::new(),
            stock_dirty: AtomicBool::new(false),
            audiences: Audiences::default(),
        });
        tokio::spawn(Arc::clone(&hub).run());
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this lock would be a bug; keep serving with the state as it is.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
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
                return sh.view.window(sku);
            }
        }
        self.view_at(now_ms).1.window(sku)
    }

    /// Sequences, serializes once, remembers and fans out one broadcast.
    fn publish(&self, sh: &mut Shared, build: impl FnOnce(u64, u64) -> ServerMsg) {
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
        if sh.history.len() == HISTORY {
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

    /// Publishes what changed on the timeline between the last view and `now`.
    fn refresh(&self, sh: &mut Shared, now_ms: u64) {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let old_state = sh.view.state;
        let state_changed = view.state != old_state;
        let new_cues = sh.view.fired.len()..view.fired.len();
        let new_cues = if view.fired.starts_with(&sh.view.fired) {
            new_cues
        } else {
            0..0
        };
        let next_cue = NextCue::of(&view, &sh.record.spec.script);
        let state_msg = |seq, ts| ServerMsg::State {
            seq,
            ts,
            state: view.state,
            elapsed_s: view.elapsed_ms as f64 / 1000.0,
            next_cue: next_cue.clone(),
        };
        if state_changed && view.state != DropState::Closed {
            self.publish(sh, state_msg);
        }
        let mut revealed = false;
        for f in &view.fired[new_cues] {
            let item = match (f.cue.kind, &f.cue.sku) {
                (CueType::Reveal, Some(sku)) => sh.record.spec.item(sku).cloned(),
                _ => None,
            };
            revealed |= item.is_some();
            self.publish(sh, |seq, ts| ServerMsg::Cue {
                seq,
                ts,
                index: f.index(),
                cue: f.cue.clone(),
                at_ms: f.at_ms,
                item,
                next_cue: next_cue.clone(),
            });
        }
        if state_changed && view.state == DropState::Closed {
            self.publish(sh, state_msg);
        }
        sh.view = view;
        sh.viewed_at_ms = now_ms;
        if revealed {
            self.stock_changed();
        }
    }

    /// Takes a newer record (after a control action, here or elsewhere) and publishes its effects.
    pub fn apply_record(&self, record: Arc<DropRecord>) {
        let now = self.ctx.clock.now_ms();
        let mut sh = self.lock();
        if record.log.len() < sh.record.log.len() {
            return;
        }
        sh.record = record;
        self.refresh(&mut sh, now);
        drop(sh);
        self.timeline_changed.notify_one();
    }

    /// Appends a control action to the log (checked against the state at `now`) and
    /// publishes its effects before returning.
    pub async fn control(&self, action: ControlAction) -> Result<Arc<DropRecord>, AppError> {
        let mut record = self.record();
        for _ in 0..8 {
            let now = self.ctx.clock.now_ms();
            let view = TimelineView::compute(&record.spec.script, &record.log, now);
            view.check(&action, &record.spec)?;
            let at_ms = record.log.last().map_or(now, |e| e.at_ms.max(now));
            let entry = ControlEntry {
                at_ms,
                action: action.clone(),
            };
            match self
                .ctx
                .store
                .append_control(&self.id, record.log.len(), entry)
                .await
            {
                Ok(log) => {
                    let updated = Arc::new(DropRecord {
                        log,
                        ..(*record).clone()
                    });
                    self.apply_record(Arc::clone(&updated));
                    return Ok(updated);
                }
                Err(StoreError::Conflict) => {
                    let fresh = self.ctx.store.drop_record(&self.id).await?;
                    record =
                        Arc::new(fresh.ok_or_else(|| StoreError::NoSuchDrop(self.id.clone()))?);
                    self.apply_record(Arc::clone(&record));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
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
                CatchUp::Snapshot(Utf8Bytes::from(
                    serde_json::to_string(&msg).unwrap_or_default(),
                ))
            }
        };
        Join { seq, rx, catch_up }
    }

    fn snapshot_locked(&self, sh: &Shared, audience: Audience, now_ms: u64) -> DropSnapshot {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let live = LiveFigures {
            stock: sh.stock.clone(),
            leaderboard: sh.leaderboard.clone(),
            viewers: self.audiences.now.load(Ordering::Relaxed),
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

    /// Marks stock (and the leaderboard) as changed; published coalesced.
    pub fn stock_changed(&self) {
        self.stock_dirty.store(true, Ordering::Release);
        self.figures_changed.notify_one();
    }

    pub fn viewer_joined(&self, viewer_id: Option<&str>) {
        let now = self.audiences.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.audiences.peak.fetch_max(now, Ordering::Relaxed);
        match viewer_id {
            Some(id) => {
                let mut known = self
                    .audiences
                    .known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                known.insert(id.to_owned());
            }
            None => {
                self.audiences
                    .anonymous_total
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.figures_changed.notify_one();
    }

    pub fn viewer_left(&self) {
        self.audiences.now.fetch_sub(1, Ordering::Relaxed);
        self.figures_changed.notify_one();
    }

    pub fn viewer_counts(&self) -> ViewerCounts {
        let known = self
            .audiences
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len() as u64;
        ViewerCounts {
            now: self.audiences.now.load(Ordering::Relaxed),
            peak: self.audiences.peak.load(Ordering::Relaxed),
            unique: known + self.audiences.anonymous_total.load(Ordering::Relaxed),
        }
    }

    async fn publish_figures(&self) {
        if self.stock_dirty.swap(false, Ordering::AcqRel) {
            match self.ctx.store.figures(&self.id).await {
                Ok(figures) => {
                    let mut sh = self.lock();
                    let stock: Vec<StockItem> = figures
                        .stock
                        .into_iter()
                        .filter(|s| sh.view.is_revealed(&s.sku))
                        .collect();
                    if stock != sh.stock {
                        sh.stock = stock.clone();
                        self.publish(&mut sh, |seq, ts| ServerMsg::Stock {
                            seq,
                            ts,
                            items: stock,
                        });
                    }
                    if figures.leaderboard != sh.leaderboard {
                        sh.leaderboard = figures.leaderboard.clone();
                        self.publish(&mut sh, |seq, ts| ServerMsg::Leaderboard {
                            seq,
                            ts,
                            top: figures.leaderboard,
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(drop = %self.id, error = %e, "cannot read figures; will retry");
                    self.stock_dirty.store(true, Ordering::Release);
                }
            }
        }
        let count = self.audiences.now.load(Ordering::Relaxed);
        let mut sh = self.lock();
        if count != sh.viewers_published {
            sh.viewers_published = count;
            self.publish(&mut sh, |seq, ts| ServerMsg::Viewers { seq, ts, count });
        }
    }

    async fn top_up_seq(&self) {
        let needs = {
            let sh = self.lock();
            sh.spare_block.is_none() && sh.seq_end - sh.seq < SEQ_BLOCK / 2
        };
        if needs {
            match self.ctx.store.reserve_seq(&self.id, SEQ_BLOCK).await {
                Ok(start) => self.lock().spare_block = Some(start),
                Err(e) => {
                    tracing::warn!(drop = %self.id, error = %e, "cannot reserve sequence numbers")
                }
            }
        }
    }

    /// The hub's task: cues on time, coalesced figures, until shutdown.
    async fn run(self: Arc<Self>) {
        let mut shutdown = self.ctx.shutdown.clone();
        let mut last_figures = tokio::time::Instant::now() - COALESCE;
        let mut figures_due: Option<tokio::time::Instant> = None;
        loop {
            let next = {
                let now = self.ctx.clock.now_ms();
                let mut sh = self.lock();
                self.refresh(&mut sh, now);
                sh.view.next_change_ms()
            };
            let wake = next.map(|ms| self.ctx.clock.instant_at(ms));
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
                _ = self.timeline_changed.notified() => {}
                _ = self.figures_changed.notified(), if figures_due.is_none() => {
                    // Trailing edge: a burst of claims is summed up once it has had time to land,
                    // instead of fanning out mid-burst while answers are still owed.
                    figures_due = Some((last_figures + COALESCE).max(tokio::time::Instant::now() + COALESCE / 2));
                }
                _ = tokio::time::sleep_until(figures_due.unwrap_or(far)), if figures_due.is_some() => {
                    figures_due = None;
                    last_figures = tokio::time::Instant::now();
                    self.publish_figures().await;
                }
                _ = shutdown.changed() => return,
            }
            self.top_up_seq().await;
        }
    }
}
