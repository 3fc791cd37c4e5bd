//! Fan-out: a hub's writer tasks write each broadcast straight into every viewer's socket,
//! so a broadcast to 15,000 viewers costs a walk over the viewers, not 15,000 task wake-ups.
//! There is one writer per worker thread, each for the viewers whose connection number falls
//! in its share ([`Share`]), so a fan-out uses every core and a viewer's broadcasts are
//! always offered by the same writer, in order.
//!
//! Each viewer's socket is split: its connection task keeps the reading half, and the
//! writing half (the sink) lives in the viewer's [`Outlet`], shared by the connection task
//! and the hub's writer under a `std` mutex that is never held across an `.await`.
//!
//! The policy, for each broadcast and each outlet, under the outlet's lock:
//!
//! - the viewer already has it (its connection task caught up from the history): nothing;
//! - the sink is in the outlet and the viewer's last frame is the broadcast before this one
//!   (`Frame::prev`): the frame is written with **one** poll, never waiting. Written and
//!   flushed: done. Queued in the sink but not flushed (the socket is full): the viewer has
//!   it, and its connection task is woken to flush;
//! - anything else (the sink is out with the connection task, a frame was skipped, the sink
//!   is not ready, an error): the outlet is marked behind and its connection task woken.
//!
//! A woken connection task takes the sink, does the waiting (the flush, its own replies,
//! the broadcasts after its last one from the hub's history, each under the send timeout),
//! and puts the sink back only if nothing was skipped meanwhile, else catches up again. A
//! viewer more than `viewer_queue` broadcasts behind, or behind the history, is closed 4008
//! (slow consumer), as is one whose socket stays blocked for the send timeout.
//!
//! The writer reads the hub's broadcasts from one more receiver of its ring; if it lags, it
//! goes on with the oldest it still has, and the outlets it skipped catch up by themselves.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use axum::extract::ws::{Message, WebSocket};
use futures_util::Sink;
use futures_util::stream::SplitSink;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast, watch};

use super::Frame;
use super::task::raised;
use crate::metrics::Metrics;

/// The writing half of a viewer's socket.
pub type WsSink = SplitSink<WebSocket, Message>;

/// Outlets the writer walks before it lets other tasks run (claims are answered during a
/// long fan-out).
const YIELD_EVERY: usize = 64;
/// One outlet in this many records its delivery latency.
const SAMPLE_EVERY: u64 = 64;

/// What the outlet's lock guards.
struct Lane {
    /// The sink, unless the connection task holds it.
    sink: Option<WsSink>,
    /// The seq of the last broadcast written (or queued) to the viewer.
    last_seq: u64,
    /// The writer skipped a broadcast, or left one unflushed: the connection task must act.
    behind: bool,
}

/// One viewer's writing half, shared by its connection task and the hub's writer.
pub struct Outlet {
    conn: u64,
    lane: Mutex<Lane>,
    wake: Notify,
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outlet")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// What one offer of a frame to an outlet did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// Written (perhaps only queued, the connection task then flushes).
    Written,
    /// The viewer had it already.
    Had,
    /// Not written: the connection task catches up.
    Behind,
}

impl Outlet {
    fn lane(&self) -> MutexGuard<'_, Lane> {
        crate::sync::lock(&self.lane)
    }

    /// Resolves when the writer needs the connection task (a permit is kept if it is not
    /// waiting: no wake-up is lost).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Takes the sink (if the writer has it) and the seq of the last broadcast written.
    pub fn take(&self) -> (Option<WsSink>, u64) {
        let mut lane = self.lane();
        lane.behind = false;
        (lane.sink.take(), lane.last_seq)
    }

    /// Hands the sink back to the writer, the viewer having every broadcast up to
    /// `last_seq`; refused (the sink returned) when the writer skipped one meanwhile.
    pub fn give_back(&self, sink: WsSink, last_seq: u64) -> Result<(), WsSink> {
        let mut lane = self.lane();
        if lane.behind {
            lane.behind = false;
            return Err(sink);
        }
        lane.sink = Some(sink);
        lane.last_seq = last_seq;
        Ok(())
    }

    fn behind(&self, mut lane: MutexGuard<'_, Lane>) -> Offer {
        lane.behind = true;
        drop(lane);
        self.wake.notify_one();
        Offer::Behind
    }

    /// Writes `frame` if that can be done at once and in order; else wakes the connection.
    fn offer(&self, frame: &Frame) -> Offer {
        let mut lane = self.lane();
        if lane.last_seq >= frame.seq {
            return Offer::Had;
        }
        if lane.last_seq != frame.prev {
            return self.behind(lane);
        }
        let Some(sink) = lane.sink.as_mut() else {
            return self.behind(lane);
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = Pin::new(sink);
        if !matches!(sink.as_mut().poll_ready(&mut cx), Poll::Ready(Ok(()))) {
            return self.behind(lane);
        }
        // A split sink keeps the item: from here on the frame goes out with the next flush.
        if sink
            .as_mut()
            .start_send(Message::Text(frame.text.clone()))
            .is_err()
        {
            return self.behind(lane);
        }
        let flushed = matches!(sink.poll_flush(&mut cx), Poll::Ready(Ok(())));
        lane.last_seq = frame.seq;
        if !flushed {
            // Queued, not flushed: the viewer has it; the connection task flushes.
            self.behind(lane);
        }
        Offer::Written
    }
}

/// A hub's outlets, by connection number.
#[derive(Debug, Default)]
pub struct Outlets {
    map: Mutex<Registered>,
}

/// The outlets, and the list the writer walks (built again after a join or a leave).
#[derive(Debug, Default)]
struct Registered {
    by_conn: HashMap<u64, Arc<Outlet>>,
    list: Option<Arc<[Arc<Outlet>]>>,
}

impl Outlets {
    /// Registers a joining viewer's outlet, its sink still with its connection task, as
    /// having every broadcast up to `seq`.
    pub(super) fn register(self: &Arc<Self>, conn: u64, seq: u64) -> Registration {
        let outlet = Arc::new(Outlet {
            conn,
            lane: Mutex::new(Lane {
                sink: None,
                last_seq: seq,
                behind: false,
            }),
            wake: Notify::new(),
        });
        let mut registered = crate::sync::lock(&self.map);
        registered.by_conn.insert(conn, Arc::clone(&outlet));
        registered.list = None;
        drop(registered);
        Registration {
            outlets: Arc::clone(self),
            outlet,
        }
    }

    fn all(&self) -> Arc<[Arc<Outlet>]> {
        let mut registered = crate::sync::lock(&self.map);
        let Registered { by_conn, list } = &mut *registered;
        Arc::clone(list.get_or_insert_with(|| by_conn.values().cloned().collect()))
    }
}

/// A viewer's outlet while it is registered: dropping it removes it from the hub's.
#[derive(Debug)]
pub struct Registration {
    outlets: Arc<Outlets>,
    outlet: Arc<Outlet>,
}

impl Registration {
    pub fn outlet(&self) -> &Arc<Outlet> {
        &self.outlet
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registered = crate::sync::lock(&self.outlets.map);
        registered.by_conn.remove(&self.outlet.conn);
        registered.list = None;
    }
}

/// The outlets one writer fills: those whose connection number is `shard` modulo `of`
/// (a viewer stays with one writer, so its broadcasts are offered in order).
#[derive(Debug)]
pub(super) struct Share {
    pub outlets: Arc<Outlets>,
    pub shard: u64,
    pub of: u64,
}

impl Share {
    fn mine(&self, outlet: &Outlet) -> bool {
        outlet.conn % self.of == self.shard
    }
}

/// A hub's writer: every broadcast into every outlet of its share, until the hub stops.
pub(super) async fn write(
    share: Share,
    mut rx: broadcast::Receiver<Frame>,
    mut stop: watch::Receiver<bool>,
    metrics: Metrics,
) {
    loop {
        let frame = tokio::select! {
            frame = rx.recv() => frame,
            () = raised(&mut stop) => return,
        };
        let frame = match frame {
            Ok(frame) => frame,
            // The broadcasts it missed are in the history: every viewer of its share catches
            // up from there by itself (or is closed 4008 if the history no longer reaches).
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "the fan-out writer fell behind");
                for outlet in share.outlets.all().iter().filter(|o| share.mine(o)) {
                    outlet.behind(outlet.lane());
                }
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let mut written = 0;
        let all = share.outlets.all();
        for (i, outlet) in all.iter().filter(|o| share.mine(o)).enumerate() {
            if outlet.offer(&frame) == Offer::Written {
                written += 1;
                if outlet.conn.is_multiple_of(SAMPLE_EVERY) {
                    let waited = frame.published.elapsed().as_secs_f64();
                    metrics.delivery_seconds.observe(waited);
                    metrics.queue_lag.observe(rx.len() as f64);
                }
            }
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        metrics.messages_sent.inc_by(written);
    }
}
