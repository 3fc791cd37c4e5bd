//! [`MemoryBus`]: the bus for hub nodes in one process sharing one store — what the
//! multi-node hub tests use without Redis. It keeps the contract of the Redis bus
//! (`publish.lua`, `audience.lua`) in plain Rust: one sequence, stream and subscriber list
//! per drop behind one lock, so pushes go out in `seq` order.
//!
//! What it reads of the drop (whether it exists, its control log for the `stale` check)
//! comes from the store it was given. It sets none of the claim-window flags a
//! [`Mark::Once`] names: those are for the Redis claim script; the memory store trusts the
//! hub's window. Nothing is ever dropped from it but the stream's oldest broadcasts: it
//! lives as long as the test.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use dropwire_core::DropId;
use tokio::sync::mpsc;

use super::{
    AudienceReport, AudienceTotals, Bus, BusEvent, IDS_PER_REPORT, Mark, Published, RANGE_MAX,
};
use crate::{Store, StoreError};

/// Broadcasts a drop's stream keeps (as the Redis stream, about).
const KEPT: usize = 4096;
/// Pushes one node's queue of a drop holds before further ones are dropped.
const DROP_QUEUE: usize = 4096;

/// One drop on the bus.
#[derive(Debug, Default)]
struct Channel {
    seq: u64,
    stream: VecDeque<(u64, String)>,
    /// Fields published once.
    once: HashSet<String>,
    /// Per figure: the last `(version, revealed)` seen and the content last published.
    newer: HashMap<&'static str, ((u64, u64), String)>,
    /// Each node's queue.
    subscribers: HashMap<String, mpsc::Sender<BusEvent>>,
    /// Each node's viewer count and until when it counts.
    nodes: HashMap<String, (u64, u64)>,
    peak: u64,
    viewers: Option<u64>,
    unique: HashSet<String>,
    anonymous: u64,
}

impl Channel {
    /// Pushes to every subscribed node; a full queue drops the push, a gone one the node.
    fn push(&mut self, event: &BusEvent) {
        self.subscribers.retain(|_, tx| {
            !matches!(
                tx.try_send(event.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }

    /// Numbers, keeps and pushes one broadcast.
    fn broadcast(&mut self, body: impl FnOnce(u64) -> String) -> u64 {
        self.seq += 1;
        let body = body(self.seq);
        if self.stream.len() >= KEPT {
            self.stream.pop_front();
        }
        self.stream.push_back((self.seq, body.clone()));
        self.push(&BusEvent::Broadcast(body));
        self.seq
    }
}

/// The drops of every node's end.
type Channels = Arc<Mutex<HashMap<DropId, Channel>>>;

/// One node's end of an in-memory bus; [`MemoryBus::join`] gives the other nodes theirs.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    store: Arc<dyn Store>,
    node: String,
    channels: Channels,
}

impl MemoryBus {
    /// A new bus over `store` (the one every node shares), and `node`'s end of it.
    pub fn new(store: Arc<dyn Store>, node: impl Into<String>) -> MemoryBus {
        MemoryBus {
            store,
            node: node.into(),
            channels: Channels::default(),
        }
    }

    /// Another node's end of the same bus.
    pub fn join(&self, node: impl Into<String>) -> MemoryBus {
        MemoryBus {
            node: node.into(),
            ..self.clone()
        }
    }

    /// This node's name in the viewer count.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<DropId, Channel>> {
        crate::sync::lock(&self.channels)
    }

    /// Whether the drop exists, and its control log's entry times.
    async fn log_times(&self, id: &DropId) -> Result<Option<Vec<u64>>, StoreError> {
        let record = self.store.drop_record(id).await?;
        Ok(record.map(|r| r.log.iter().map(|e| e.at_ms).collect()))
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn is_connected(&self) -> bool {
        true
    }

    async fn subscribe(&self, id: &DropId) -> Result<mpsc::Receiver<BusEvent>, StoreError> {
        let (tx, rx) = mpsc::channel(DROP_QUEUE);
        let mut channels = self.channels();
        let channel = channels.entry(id.clone()).or_default();
        channel.subscribers.insert(self.node.clone(), tx);
        Ok(rx)
    }

    async fn publish(
        &self,
        id: &DropId,
        prefix: &str,
        suffix: &str,
        mark: &Mark,
    ) -> Result<Published, StoreError> {
        // The log is read before the bus is locked: a control entry appended in between
        // counts as appended after this publication (as if the script had run first).
        let Some(log) = self.log_times(id).await? else {
            return Ok(Published::Gone);
        };
        let mut channels = self.channels();
        let channel = channels.entry(id.clone()).or_default();
        match mark {
            Mark::Always => {}
            Mark::Once {
                field,
                log_len,
                at_ms,
                ..
            } => {
                let unseen =
                    usize::try_from(*log_len).map_or(&[][..], |n| log.get(n..).unwrap_or(&[]));
                if (log.len() as u64) < *log_len || unseen.iter().any(|t| t < at_ms) {
                    return Ok(Published::Stale);
                }
                if !channel.once.insert(field.clone()) {
                    return Ok(Published::Dup);
                }
            }
            Mark::Newer {
                field,
                version,
                revealed,
                content,
            } => {
                let seen = (*version, *revealed);
                let last = channel.newer.get(field);
                let not_newer = last
                    .is_some_and(|((v, r), _)| *version < *v || *revealed < *r || seen == (*v, *r));
                if not_newer {
                    return Ok(Published::Dup);
                }
                let same = last.is_some_and(|(_, c)| c == content);
                let entry = channel.newer.entry(field).or_default();
                entry.0 = seen;
                if same {
                    return Ok(Published::Dup);
                }
                entry.1 = content.clone();
            }
        }
        let seq = channel.broadcast(|seq| format!("{prefix}{seq}{suffix}"));
        Ok(Published::Sent(seq))
    }

    async fn announce_log(&self, id: &DropId, len: u64) -> Result<(), StoreError> {
        if let Some(channel) = self.channels().get_mut(id) {
            channel.push(&BusEvent::LogChanged(len));
        }
        Ok(())
    }

    async fn recent(&self, id: &DropId, n: usize) -> Result<(u64, Vec<(u64, String)>), StoreError> {
        let channels = self.channels();
        let Some(channel) = channels.get(id) else {
            return Ok((0, Vec::new()));
        };
        let skip = channel.stream.len().saturating_sub(n);
        Ok((
            channel.seq,
            channel.stream.iter().skip(skip).cloned().collect(),
        ))
    }

    async fn since(
        &self,
        id: &DropId,
        after: u64,
        upto: Option<u64>,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let channels = self.channels();
        let Some(channel) = channels.get(id) else {
            return Ok(Vec::new());
        };
        Ok(channel
            .stream
            .iter()
            .filter(|(seq, _)| *seq > after && upto.is_none_or(|u| *seq <= u))
            .take(RANGE_MAX)
            .cloned()
            .collect())
    }

    async fn keep_seq_above(&self, id: &DropId, seen: u64) -> Result<u64, StoreError> {
        let mut channels = self.channels();
        let channel = channels.entry(id.clone()).or_default();
        let was = channel.seq;
        channel.seq = was.max(seen);
        Ok(was)
    }

    async fn report_audience(
        &self,
        id: &DropId,
        report: &AudienceReport,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Result<AudienceTotals, StoreError> {
        if self.log_times(id).await?.is_none() {
            return Ok(AudienceTotals::default());
        }
        let mut channels = self.channels();
        let channel = channels.entry(id.clone()).or_default();
        if deadline_ms == 0 {
            channel.nodes.remove(&self.node);
        } else {
            channel
                .nodes
                .insert(self.node.clone(), (report.count, deadline_ms));
        }
        channel.nodes.retain(|_, (_, deadline)| *deadline >= now_ms);
        let total = channel.nodes.values().map(|(count, _)| count).sum();
        channel.peak = channel.peak.max(total);
        channel.anonymous += report.anonymous_joins;
        let ids = report.new_ids.iter().take(IDS_PER_REPORT).cloned();
        channel.unique.extend(ids);
        if channel.viewers != Some(total) {
            channel.viewers = Some(total);
            channel.broadcast(|seq| {
                format!(r#"{{"type":"viewers","seq":{seq},"ts":{now_ms},"count":{total}}}"#)
            });
        }
        Ok(AudienceTotals {
            now: total,
            peak: channel.peak,
            unique: channel.unique.len() as u64 + channel.anonymous,
        })
    }
}
