//! How a hub numbers and delivers its broadcasts: the hub's two modes, behind one trait
//! ([`Sequencer`]), chosen once when the hub starts ([`open`]).
//!
//! - [`Local`]: this node alone serves the drop. The hub numbers each broadcast itself,
//!   from blocks of numbers reserved in the store (so a restart never reuses one), and
//!   delivers it at once; it counts its viewers alone.
//! - [`Relay`]: several nodes share a [`Bus`](dropwire_store::Bus). The hub hands each
//!   broadcast to the bus, which numbers it; every node delivers what comes back
//!   ([`DropHub::ingest`]), so every viewer sees one order; the bus sums the viewers.
//!
//! Both honour the marks of the bus contract in their own way: on one node a cue or state
//! change is computed once anyway, and a figure (stock, leaderboard) goes out only when it
//! differs from the one delivered last.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use dropwire_core::DropId;
use dropwire_core::protocol::ServerMsg;
use dropwire_store::{Mark, StoreError};

use super::relay::{Relay, Resend};
use super::{DropHub, HubCtx, HubState, ViewerCounts};

/// Sequence numbers reserved from the store at a time.
const SEQ_BLOCK: u64 = 1 << 20;

/// What a hub's mode does (module docs). What differs only in a fact (how many tasks of
/// its own the mode runs, whether other nodes share the drop) is in [`Opened`]; the relay's
/// heartbeat and its leaving the viewer count are its own task's.
#[async_trait]
pub(super) trait Sequencer: Send + Sync + std::fmt::Debug {
    /// Starts its own tasks once the hub exists ([`Opened::own_tasks`] of them); they end
    /// with the hub's `stop`.
    fn start(&self, hub: &Arc<DropHub>);

    /// Numbers, serializes once and delivers one broadcast (local), or hands it to the bus
    /// under `mark`, to come back numbered through [`DropHub::ingest`] (relay). `build`
    /// makes the message for a `seq` and a send time; called under the hub's lock.
    fn publish(
        &self,
        hub: &DropHub,
        sh: &mut HubState,
        mark: &dyn Fn() -> (Mark, Resend),
        build: &dyn Fn(u64, u64) -> ServerMsg,
    );

    /// A viewer joined on this node (`None`: without a token).
    fn viewer_joined(&self, viewer_id: Option<&str>);

    /// The viewer counts, given this node's viewers `now` and their `peak`.
    fn viewer_counts(&self, now: u64, peak: u64) -> ViewerCounts;

    /// Whether this node's viewer count `count` has news to send.
    fn viewers_changed(&self, count: u64) -> bool;

    /// Sends this node's viewer count: a broadcast (local), a report the bus sums (relay).
    async fn send_viewers(&self, hub: &DropHub, count: u64);

    /// After each turn of the hub's task: keeps sequence numbers in reserve (local).
    async fn top_up(&self, hub: &DropHub);

    /// Tells the other nodes that the control log now has `len` entries (relay).
    async fn announce_log(&self, hub: &DropHub, len: u64);
}

/// A new hub's mode, and where its numbering stands.
pub(super) struct Opened {
    pub sequencer: Box<dyn Sequencer>,
    /// How many tasks of its own the mode starts, each holding the hub.
    pub own_tasks: usize,
    /// Whether other nodes share the drop (and may change its control log behind this
    /// node's back).
    pub shared: bool,
    /// The last `seq` given out; the hub's first broadcast gets the next.
    pub last: u64,
    /// The latest broadcasts, oldest first, for viewers resuming with `since`.
    pub recent: Vec<(u64, String)>,
}

/// The mode of a new hub of `id`: the relay when the node has a bus, local otherwise.
pub(super) async fn open(ctx: &HubCtx, id: &DropId) -> Result<Opened, StoreError> {
    match &ctx.bus {
        Some(bus) => Relay::open(Arc::clone(bus), id, ctx.history).await,
        None => Local::open(ctx, id).await,
    }
}

/// The numbers reserved: up to `end`, then `spare` (the next block, once reserved).
#[derive(Debug)]
struct Block {
    end: u64,
    spare: Option<u64>,
}

/// The local mode: numbers from blocks reserved in the store, viewers counted here.
#[derive(Debug)]
pub(super) struct Local {
    block: Mutex<Block>,
    /// Viewers with a token seen here (unique viewers), and joins without one.
    known: Mutex<HashSet<String>>,
    anonymous: AtomicU64,
    /// The viewer count last published.
    published_viewers: AtomicU64,
}

impl Local {
    async fn open(ctx: &HubCtx, id: &DropId) -> Result<Opened, StoreError> {
        let first = ctx.store.reserve_seq(id, SEQ_BLOCK).await?;
        let local = Local {
            block: Mutex::new(Block {
                end: first + SEQ_BLOCK,
                spare: None,
            }),
            known: Mutex::default(),
            anonymous: AtomicU64::new(0),
            published_viewers: AtomicU64::new(0),
        };
        Ok(Opened {
            sequencer: Box::new(local),
            own_tasks: 0,
            shared: false,
            last: first.saturating_sub(1),
            recent: Vec::new(),
        })
    }

    fn block(&self) -> MutexGuard<'_, Block> {
        crate::sync::lock(&self.block)
    }

    /// The number after `last`: the next in the block, or the spare block's first.
    fn upcoming(&self, last: u64) -> u64 {
        let block = self.block();
        match block.spare {
            Some(next) if last + 1 >= block.end => next,
            _ => last + 1,
        }
    }

    /// `seq` is given out: moves to the spare block if it is that block's first.
    fn take(&self, seq: u64) {
        let mut block = self.block();
        if block.spare == Some(seq) {
            block.spare = None;
            block.end = seq + SEQ_BLOCK;
        }
    }
}

#[async_trait]
impl Sequencer for Local {
    fn start(&self, _hub: &Arc<DropHub>) {}

    fn publish(
        &self,
        hub: &DropHub,
        sh: &mut HubState,
        _mark: &dyn Fn() -> (Mark, Resend),
        build: &dyn Fn(u64, u64) -> ServerMsg,
    ) {
        let started = Instant::now();
        let seq = self.upcoming(sh.seq);
        let msg = build(seq, hub.now_ms());
        if sh.delivered_already(&msg) {
            return;
        }
        let Ok(text) = crate::encode::to_json("a broadcast", &msg) else {
            return;
        };
        let text = Utf8Bytes::from(text);
        self.take(seq);
        sh.seq = seq;
        sh.note(msg);
        hub.deliver(sh, seq, started, text);
    }

    fn viewer_joined(&self, viewer_id: Option<&str>) {
        match viewer_id {
            Some(id) => {
                let mut known = crate::sync::lock(&self.known);
                known.insert(id.to_owned());
            }
            None => {
                self.anonymous.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn viewer_counts(&self, now: u64, peak: u64) -> ViewerCounts {
        let known = crate::sync::lock(&self.known).len() as u64;
        ViewerCounts {
            now,
            peak,
            unique: known + self.anonymous.load(Ordering::Relaxed),
        }
    }

    fn viewers_changed(&self, count: u64) -> bool {
        count != self.published_viewers.load(Ordering::Relaxed)
    }

    async fn send_viewers(&self, hub: &DropHub, count: u64) {
        let mut sh = hub.lock();
        self.published_viewers.store(count, Ordering::Relaxed);
        let mark = || (Mark::Always, Resend::Nothing);
        self.publish(hub, &mut sh, &mark, &|seq, ts| ServerMsg::Viewers {
            seq,
            ts,
            count,
        });
    }

    async fn top_up(&self, hub: &DropHub) {
        let last = hub.last_seq();
        let needs = {
            let block = self.block();
            block.spare.is_none() && block.end.saturating_sub(last) < SEQ_BLOCK / 2
        };
        if needs {
            match hub.store().reserve_seq(&hub.id, SEQ_BLOCK).await {
                Ok(start) => self.block().spare = Some(start),
                Err(e) => {
                    tracing::warn!(drop = %hub.id, error = %e, "cannot reserve sequence numbers")
                }
            }
        }
    }

    async fn announce_log(&self, _hub: &DropHub, _len: u64) {}
}
