//! The hub's bus mode ([`Relay`]): its link to the other hub nodes sharing a [`Bus`] (Redis,
//! or in tests the in-memory bus).
//!
//! With several nodes, a drop's broadcasts must reach every node's viewers in one order, so
//! the hub hands each broadcast (serialized once, with its `seq` left out) to its
//! [`Relay`], whose writer task publishes it on the bus: the bus gives it the next `seq`,
//! keeps it in the drop's stream and pushes it to every node. The reader task takes what
//! arrives — this node's broadcasts and every other node's — fills any gap from the
//! stream, and hands it to the hub to deliver ([`DropHub::ingest`]).
//!
//! Cues and state changes are computed by every node from the shared control log; each is
//! published under a mark, so exactly one copy reaches viewers, and a node whose log is
//! behind is told so (`stale`) and re-reads it ([`DropHub::resync`]). The viewer count is
//! summed by the bus from every node's reports.
//!
//! A cue or state change that the bus does not take is retried with capped exponential
//! backoff ([`RETRY_FIRST`] doubling up to [`RETRY_MAX`]) for the hub's publish patience
//! (30 s by default), then given up: logged as an error and counted in
//! `dropwire_publish_failures_total{kind}`. The writer goes on with the next broadcast; a
//! viewer who missed the cue sees its effect in the next snapshot (a reconnect, a resume
//! beyond the history). Figures are never retried as such: they are read again and the
//! newest published once Redis is back.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use dropwire_core::DropId;
use dropwire_core::protocol::ServerMsg;
use dropwire_store::bus::IDS_PER_REPORT;
use dropwire_store::{AudienceReport, AudienceTotals, Bus, BusEvent, Mark, Published, StoreError};
use tokio::sync::{mpsc, watch};

use super::sequencer::{Opened, Sequencer};
use super::{DropHub, HubState, ViewerCounts, raised};

/// Broadcasts a hub may have waiting for the writer (a few seconds' worth, at most).
const OUTGOING: usize = 1024;
/// A node reports its viewers at least this often; a report counts for three times as long.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Viewer ids waiting for the next report, at most (more joins still count as viewers).
const PENDING_IDS: usize = 50_000;
/// How often the reader looks in the stream for broadcasts that never came on the channel
/// (a push dropped at the end of a burst, a gap it could not fill while Redis was away).
const CATCH_UP: Duration = Duration::from_secs(2);
/// The first wait before a failed cue or state change is published again; it doubles.
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest wait between two tries.
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long a cue or state change is retried unless the options say otherwise.
pub const PUBLISH_PATIENCE: Duration = Duration::from_secs(30);

/// What the writer does again after a `stale` answer, once the log is re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    Nothing,
    /// The current state.
    State,
    /// Every fired cue from this time on (marks keep duplicates out).
    CuesFrom(u64),
}

/// One broadcast on its way to the bus.
#[derive(Debug)]
pub(super) struct Outgoing {
    prefix: String,
    suffix: String,
    mark: Mark,
    resend: Resend,
}

/// Splits a serialized broadcast (built with `seq` 0) around its `seq`: the bytes before
/// the number and after it. `None` if the message has no top-level `"seq":0`.
fn split_seq(text: &str) -> Option<(&str, &str)> {
    // The tag comes first (`{"type":"cue","seq":0,…`), so the first `"seq":` is the message's.
    let at = text.find("\"seq\":")? + "\"seq\":".len();
    let rest = text.get(at..)?;
    let after = rest.strip_prefix('0')?;
    after.starts_with([',', '}']).then(|| (&text[..at], after))
}

/// The `seq` of a broadcast as it arrives from the bus.
fn seq_of(text: &str) -> Option<u64> {
    let at = text.find("\"seq\":")? + "\"seq\":".len();
    let digits = text[at..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(&text[at..], |end| &text[at..at + end]);
    digits.parse().ok()
}

/// This node's viewers of a drop as the bus has heard of them, and what is still to report.
#[derive(Debug, Default)]
struct AudienceTally {
    new_ids: Vec<String>,
    anonymous_joins: u64,
    reported: Option<u64>,
    totals: Option<AudienceTotals>,
}

/// What the relay's tasks take when they start: the drop's pushes and the writer's queue.
type Queues = (mpsc::Receiver<BusEvent>, mpsc::Receiver<Outgoing>);

/// A hub's end of the bus.
#[derive(Debug)]
pub(super) struct Relay {
    bus: Arc<dyn Bus>,
    out: mpsc::Sender<Outgoing>,
    reporter: Reporter,
    queues: Mutex<Option<Queues>>,
}

/// Reports this node's viewers of a drop to the bus; shared by the hub's figures and the
/// relay's heartbeat task.
#[derive(Debug, Clone)]
struct Reporter {
    bus: Arc<dyn Bus>,
    tally: Arc<Mutex<AudienceTally>>,
    /// One report at a time (an async lock, held across the call on purpose), so the bus
    /// hears this node's counts in the order they were taken.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Relay {
    /// Subscribes to the drop, then reads where its numbering stands (in that order, so
    /// nothing published in between is missed) and the last `history` broadcasts.
    pub(super) async fn open(
        bus: Arc<dyn Bus>,
        id: &DropId,
        history: usize,
    ) -> Result<Opened, StoreError> {
        let events = bus.subscribe(id).await?;
        let (last, recent) = bus.recent(id, history).await?;
        let (out, queue) = mpsc::channel(OUTGOING);
        let relay = Relay {
            reporter: Reporter {
                bus: Arc::clone(&bus),
                tally: Arc::default(),
                turn: Arc::default(),
            },
            bus,
            out,
            queues: Mutex::new(Some((events, queue))),
        };
        Ok(Opened {
            sequencer: Box::new(relay),
            // The reader, the writer and the heartbeat.
            own_tasks: 3,
            shared: true,
            last,
            recent,
        })
    }

    /// Queues a broadcast for the bus. `msg` was built with `seq` 0.
    fn send(&self, msg: &ServerMsg, mark: Mark, resend: Resend) -> Result<(), String> {
        let text = crate::encode::to_json("a broadcast", msg).map_err(|e| e.to_string())?;
        let (prefix, suffix) =
            split_seq(&text).ok_or_else(|| format!("a broadcast without a seq: {text}"))?;
        let out = Outgoing {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            mark,
            resend,
        };
        self.out
            .try_send(out)
            .map_err(|_| "the bus writer is too far behind; broadcast dropped".to_owned())
    }
}

impl Reporter {
    fn tally(&self) -> MutexGuard<'_, AudienceTally> {
        crate::sync::lock(&self.tally)
    }

    /// Reports this node's viewers if anything changed (or `always`); `leaving` says it
    /// holds none any more.
    async fn report(&self, hub: &DropHub, count: u64, always: bool, leaving: bool) {
        let _turn = self.turn.lock().await;
        let report = {
            let mut a = self.tally();
            if !always && !leaving && a.reported == Some(count) && a.new_ids.is_empty() {
                return;
            }
            let take = a.new_ids.len().min(IDS_PER_REPORT);
            AudienceReport {
                count,
                anonymous_joins: std::mem::take(&mut a.anonymous_joins),
                new_ids: a.new_ids.drain(..take).collect(),
            }
        };
        let now = hub.now_ms();
        let deadline = if leaving {
            0
        } else {
            now + 3 * HEARTBEAT.as_millis() as u64
        };
        match self
            .bus
            .report_audience(&hub.id, &report, now, deadline)
            .await
        {
            Ok(totals) => {
                let mut a = self.tally();
                a.reported = Some(count);
                a.totals = Some(totals);
            }
            Err(e) => {
                tracing::warn!(drop = %hub.id, error = %e, "cannot report viewers; will retry");
                let mut a = self.tally();
                a.anonymous_joins += report.anonymous_joins;
                a.reported = None;
            }
        }
    }

    /// Reports even when nothing changed, every [`HEARTBEAT`] (a report counts for three),
    /// from the hub's start until it stops; then leaves the viewer count at once rather
    /// than when the last report runs out.
    async fn heartbeat(self, hub: Arc<DropHub>, mut stop: watch::Receiver<bool>) {
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = beat.tick() => self.report(&hub, hub.local_viewers(), true, false).await,
                () = raised(&mut stop) => break,
            }
        }
        let leave = self.report(&hub, 0, true, true);
        let _ = tokio::time::timeout(Duration::from_secs(1), leave).await;
    }
}

#[async_trait]
impl Sequencer for Relay {
    fn start(&self, hub: &Arc<DropHub>) {
        let queues = crate::sync::lock(&self.queues).take();
        let Some((events, outgoing)) = queues else {
            return;
        };
        let bus = &self.bus;
        let stop = || hub.stop.subscribe();
        tokio::spawn(read(Arc::clone(hub), Arc::clone(bus), events, stop()));
        tokio::spawn(write(Arc::clone(hub), Arc::clone(bus), outgoing, stop()));
        tokio::spawn(self.reporter.clone().heartbeat(Arc::clone(hub), stop()));
    }

    fn publish(
        &self,
        hub: &DropHub,
        _sh: &mut HubState,
        mark: &dyn Fn() -> (Mark, Resend),
        build: &dyn Fn(u64, u64) -> ServerMsg,
    ) {
        let (mark, resend) = mark();
        let msg = build(0, hub.now_ms());
        if let Err(e) = self.send(&msg, mark, resend) {
            tracing::error!(drop = %hub.id, error = %e, "cannot hand a broadcast to the bus");
        }
    }

    fn viewer_joined(&self, viewer_id: Option<&str>) {
        // Unique viewers are counted by the bus over every node (in Redis, a HyperLogLog);
        // this node keeps no set of its own.
        let mut a = self.reporter.tally();
        match viewer_id {
            Some(id) if a.new_ids.len() < PENDING_IDS => a.new_ids.push(id.to_owned()),
            Some(_) => {}
            None => a.anonymous_joins += 1,
        }
    }

    /// Every node's viewers as of this node's last report (before it: this node's).
    fn viewer_counts(&self, now: u64, peak: u64) -> ViewerCounts {
        match self.reporter.tally().totals {
            Some(totals) => ViewerCounts {
                now: totals.now,
                peak: totals.peak,
                unique: totals.unique,
            },
            None => ViewerCounts {
                now,
                peak,
                unique: 0,
            },
        }
    }

    /// Whether this node has something new to report: another count, or new viewers.
    fn viewers_changed(&self, count: u64) -> bool {
        let a = self.reporter.tally();
        a.reported != Some(count) || !a.new_ids.is_empty() || a.anonymous_joins > 0
    }

    /// The bus sums every node's viewers and publishes the total when it changed.
    async fn send_viewers(&self, hub: &DropHub, count: u64) {
        self.reporter.report(hub, count, false, false).await;
    }

    async fn top_up(&self, _hub: &DropHub) {}

    /// The other nodes would find out at their next cue (`stale`); told now, a pause or a
    /// fire-now takes effect everywhere at once.
    async fn announce_log(&self, hub: &DropHub, len: u64) {
        if let Err(e) = self.bus.announce_log(&hub.id, len).await {
            tracing::warn!(drop = %hub.id, error = %e, "cannot announce a control action");
        }
    }
}

/// What a broadcast published under `mark` is, for `dropwire_publish_failures_total`.
fn kind_of(mark: &Mark) -> &'static str {
    match mark {
        Mark::Once { field, .. } if field.starts_with("cue:") => "cue",
        Mark::Once { .. } => "state",
        Mark::Newer { .. } => "figures",
        Mark::Always => "other",
    }
}

/// The writer task: publishes a hub's broadcasts in the order the hub made them, until
/// `stop` (the hub retired, or the server shutting down).
async fn write(
    hub: Arc<DropHub>,
    bus: Arc<dyn Bus>,
    mut queue: mpsc::Receiver<Outgoing>,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = hub.metrics().bus.clone();
    let patience = hub.publish_patience();
    loop {
        let out = tokio::select! {
            out = queue.recv() => match out { Some(out) => out, None => return },
            () = raised(&mut stop) => return,
        };
        let mut wait = RETRY_FIRST;
        let given_up = tokio::time::Instant::now() + patience;
        loop {
            let result = bus
                .publish(&hub.id, &out.prefix, &out.suffix, &out.mark)
                .await;
            match result {
                Ok(Published::Sent(_)) => metrics.with_label_values(&["published"]).inc(),
                Ok(Published::Dup) => metrics.with_label_values(&["duplicate"]).inc(),
                Ok(Published::Gone) => {}
                Ok(Published::Stale) => {
                    metrics.with_label_values(&["stale"]).inc();
                    hub.resync(out.resend).await;
                }
                Err(e) => {
                    metrics.with_label_values(&["failed"]).inc();
                    if matches!(out.mark, Mark::Newer { .. }) {
                        // Figures are read again and republished when Redis is back.
                        tracing::debug!(drop = %hub.id, error = %e, "cannot publish figures");
                        hub.stock_changed();
                    } else if tokio::time::Instant::now() + wait < given_up {
                        // A cue or a state change must go out: retry while patience lasts.
                        tracing::warn!(drop = %hub.id, error = %e, "cannot publish; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = raised(&mut stop) => return,
                        }
                        wait = (wait * 2).min(RETRY_MAX);
                        continue;
                    } else {
                        let kind = kind_of(&out.mark);
                        hub.metrics()
                            .publish_failures
                            .with_label_values(&[kind])
                            .inc();
                        tracing::error!(drop = %hub.id, kind, error = %e, ?patience, "cannot publish; given up (viewers see it in their next snapshot)");
                    }
                }
            }
            break;
        }
    }
}

/// The reader task: delivers what arrives on the drop's channel, in `seq` order, gapless
/// as far as the stream still holds what was missed, until `stop`. Its queue then goes,
/// and with it this node's subscription to the channel (the subscriber drops channels
/// whose queue has gone).
async fn read(
    hub: Arc<DropHub>,
    bus: Arc<dyn Bus>,
    mut events: mpsc::Receiver<BusEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let (hub, bus) = (&hub, &*bus);
    let mut catch_up = tokio::time::interval(CATCH_UP);
    catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = events.recv() => match event { Some(e) => e, None => return },
            _ = catch_up.tick() => {
                // Anything newer in the stream than what this node delivered, and any
                // control action another node logged without announcing it.
                fill(hub, bus, hub.last_seq(), None).await;
                hub.catch_up_log().await;
                continue;
            }
            () = raised(&mut stop) => return,
        };
        match event {
            BusEvent::Broadcast(text) => {
                let Some(seq) = seq_of(&text) else {
                    tracing::warn!(drop = %hub.id, "a bus message without a seq");
                    continue;
                };
                let last = hub.last_seq();
                if seq <= last {
                    continue;
                }
                if seq > last + 1 && !fill(hub, bus, last, Some(seq - 1)).await {
                    // Delivering this one now would make the gap for good; it stays in
                    // the stream, and the next catch-up delivers both in order.
                    continue;
                }
                hub.ingest(seq, text);
            }
            BusEvent::LogChanged(len) => hub.log_changed(len).await,
            BusEvent::Resubscribed => {
                let last = hub.last_seq();
                match bus.keep_seq_above(&hub.id, last).await {
                    Ok(redis_seq) if redis_seq < last => {
                        hub.metrics().bus.with_label_values(&["rolled_back"]).inc();
                        tracing::error!(drop = %hub.id, redis_seq, last, "Redis came back without the latest broadcasts; numbering resumes after {last}");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(drop = %hub.id, error = %e, "cannot check the sequence after a reconnect")
                    }
                }
                // A failed read is retried at the next catch-up.
                fill(hub, bus, last, None).await;
            }
        }
    }
}

/// Reads the broadcasts after `after` (up to `upto`) from the stream and delivers them;
/// false if the stream could not be read (nothing was delivered).
async fn fill(hub: &DropHub, bus: &dyn Bus, after: u64, upto: Option<u64>) -> bool {
    let metrics = &hub.metrics().bus;
    let mut tries = 0;
    let missed = loop {
        match bus.since(&hub.id, after, upto).await {
            Ok(missed) => break missed,
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::debug!(drop = %hub.id, error = %e, "cannot read missed broadcasts; retrying");
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(e) => {
                tracing::warn!(drop = %hub.id, error = %e, "cannot read missed broadcasts; will try again");
                return false;
            }
        }
    };
    let mut expected = after + 1;
    for (seq, body) in missed {
        if seq > hub.last_seq() {
            if seq != expected {
                metrics.with_label_values(&["lost"]).inc_by(seq - expected);
            }
            hub.ingest(seq, body);
            metrics.with_label_values(&["gap_filled"]).inc();
        }
        expected = seq + 1;
    }
    if let Some(upto) = upto.filter(|&u| u >= expected) {
        metrics
            .with_label_values(&["lost"])
            .inc_by(upto + 1 - expected);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropwire_core::protocol::StockItem;

    #[test]
    fn every_broadcast_splits_around_its_seq() {
        let stock = ServerMsg::Stock {
            seq: 0,
            ts: 17,
            items: vec![StockItem {
                sku: "seq".into(),
                left: 0,
            }],
        };
        let viewers = ServerMsg::Viewers {
            seq: 0,
            ts: 5,
            count: 0,
        };
        let chat = ServerMsg::ChatDelete {
            seq: 0,
            ts: 1,
            ids: vec!["seq".into()],
        };
        for msg in [stock, viewers, chat] {
            let text = serde_json::to_string(&msg).unwrap();
            let (prefix, suffix) = split_seq(&text).unwrap();
            let whole = format!("{prefix}42{suffix}");
            assert_eq!(seq_of(&whole), Some(42));
            let back: serde_json::Value = serde_json::from_str(&whole).unwrap();
            assert_eq!(back["seq"], 42);
        }
    }

    #[test]
    fn a_message_without_seq_zero_does_not_split() {
        assert_eq!(split_seq(r#"{"type":"pong","ts":1}"#), None);
        assert_eq!(split_seq(r#"{"type":"x","seq":07}"#), None);
        assert_eq!(seq_of(r#"{"type":"x","seq":123,"ts":1}"#), Some(123));
    }
}
