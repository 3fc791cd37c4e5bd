//! [`RedisBus`]: the cross-node [`Bus`] of hub nodes sharing Redis (the contract is in
//! [`crate::bus`]).
//!
//! Each drop has one sequence (`seq`, allocated by `INCR` in Redis) and one stream
//! (`dw:{drop:ID}:bus`) holding its recent broadcasts under the stream id `seq-1`. A node
//! publishes a broadcast with one script call (`publish.lua`) that takes the next `seq`,
//! appends the body to the stream and publishes it on the drop's channel (the stream's name)
//! — sharded pub/sub (`SPUBLISH`) where the server has it, plain `PUBLISH` otherwise — all
//! atomically, so the channel carries the drop's broadcasts in `seq` order. Every node,
//! the publisher included, delivers to its viewers only what arrives on the channel; a node
//! that sees a gap (a lost push, a reconnect) reads the missing broadcasts from the stream.
//!
//! Messages that every node would compute alike (cues and state changes, from the shared
//! control log) carry a mark: the script publishes the first and answers `dup` to the
//! rest, and answers `stale` to a node that missed a control-log entry from before the
//! moment the message is about. Stock and leaderboard carry a version, so an older figure never follows a newer one. The viewer
//! count is summed in Redis from every node's report (`audience.lua`); a node that stops
//! reporting drops out of the sum after its deadline.
//!
//! Control-log changes are announced on the same channel as `!log:N` (no `seq`: they are
//! for nodes, not viewers), so the other nodes reload the log at once.
//!
//! The subscription is one connection per node (`Subscriber`, a task), fed into a bounded
//! queue per drop; a full queue drops pushes, which the gap check then reads back from the
//! stream. A drop whose queue was dropped (its hub retired) is unsubscribed within 2 s.
//! On Redis Cluster every key of a drop and its channel share one slot, so the same
//! scripts run there, and the subscription follows each drop's channel to its shard.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dropwire_core::DropId;
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::conn::{Conn, within};
use super::subscriber::{Command, Subscriber};
use super::{RedisStore, bad_reply, key};
use crate::StoreError;
use crate::bus::{
    AudienceReport, AudienceTotals, Bus, BusEvent, IDS_PER_REPORT, Mark, Published, RANGE_MAX,
};

/// Pushes one drop's queue holds before further ones are dropped (and read back later).
const DROP_QUEUE: usize = 4096;

/// One node's end of the bus. Cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    conn: Conn,
    publish: Script,
    audience: Script,
    seq_floor: Script,
    node: String,
    op_timeout: Duration,
    /// `SPUBLISH` where the server has sharded pub/sub, `PUBLISH` otherwise.
    publish_cmd: &'static str,
    commands: mpsc::Sender<Command>,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("node", &self.node)
            .field("publish", &self.publish_cmd)
            .finish_non_exhaustive()
    }
}

fn channel(id: &DropId) -> String {
    key(id, "bus")
}

impl RedisBus {
    /// Opens this node's end of the bus beside `store` (same Redis or Redis Cluster, own
    /// subscription connection). `node` names this node in the viewer count.
    pub async fn open(store: &RedisStore, node: String) -> Result<RedisBus, StoreError> {
        let shared = &store.shared;
        let mut conn = shared.conn.clone();
        let mut probe = redis::cmd("SPUBLISH");
        probe.arg("dw:bus-probe").arg("");
        let probe = probe.query_async::<i64>(&mut conn);
        let sharded = match within(shared.limit(), probe).await {
            Ok(_) => true,
            Err(StoreError::Redis(e)) if e.kind() == redis::ErrorKind::ResponseError => false,
            Err(e) => return Err(e),
        };
        let (commands, rx) = mpsc::channel(64);
        let connected = Arc::new(AtomicBool::new(false));
        let subscriber = Subscriber {
            nodes: shared.nodes.clone(),
            sharded,
            op_timeout: shared.op_timeout,
            routes: HashMap::new(),
            connected: Arc::clone(&connected),
        };
        match shared.conn {
            Conn::Single(_) => tokio::spawn(subscriber.run(rx)),
            Conn::Cluster(_) => tokio::spawn(subscriber.run_cluster(rx)),
        };
        Ok(RedisBus {
            conn: shared.conn.clone(),
            publish: Script::new(&super::rules::render(include_str!("publish.lua"))),
            audience: Script::new(&super::rules::render(include_str!("audience.lua"))),
            seq_floor: Script::new(include_str!("seq_floor.lua")),
            node,
            op_timeout: shared.op_timeout,
            publish_cmd: if sharded { "SPUBLISH" } else { "PUBLISH" },
            commands,
            connected,
        })
    }

    fn limit(&self) -> Duration {
        self.op_timeout * 2
    }

    /// This node's name in the viewer count.
    pub fn node(&self) -> &str {
        &self.node
    }
}

#[async_trait]
impl Bus for RedisBus {
    /// Whether the subscription connection is up.
    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Subscribes to a drop's channel; returns once Redis confirmed the subscription, so
    /// everything published afterwards arrives on the returned queue.
    async fn subscribe(&self, id: &DropId) -> Result<mpsc::Receiver<BusEvent>, StoreError> {
        let (tx, rx) = mpsc::channel(DROP_QUEUE);
        let (done, confirmed) = oneshot::channel();
        let cmd = Command::Subscribe {
            channel: channel(id),
            tx,
            done,
        };
        let gone = || StoreError::Stopped("bus subscriber");
        self.commands.send(cmd).await.map_err(|_| gone())?;
        match tokio::time::timeout(self.limit() * 2, confirmed).await {
            Ok(Ok(result)) => result.map(|()| rx),
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(StoreError::Timeout(self.limit() * 2)),
        }
    }

    /// Publishes one broadcast: `prefix` + its `seq` + `suffix` is what viewers get.
    async fn publish(
        &self,
        id: &DropId,
        prefix: &str,
        suffix: &str,
        mark: &Mark,
    ) -> Result<Published, StoreError> {
        let mut inv = self.publish.prepare_invoke();
        for part in ["rec", "seq", "bus", "marks", "log", "conf"] {
            inv.key(key(id, part));
        }
        inv.arg(prefix).arg(suffix);
        match mark {
            Mark::Always => inv.arg("always").arg("").arg(0).arg(""),
            Mark::Once {
                field,
                log_len,
                at_ms,
                ..
            } => inv.arg("once").arg(field).arg(*log_len).arg(*at_ms),
            Mark::Newer {
                field,
                version,
                revealed,
                content,
            } => inv
                .arg("newer")
                .arg(*field)
                .arg(format!("{version}:{revealed}"))
                .arg(content),
        };
        inv.arg(self.publish_cmd);
        if let Mark::Once { sets, .. } = mark {
            for flag in sets {
                inv.arg(flag);
            }
        }
        let mut conn = self.conn.clone();
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut conn)).await?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("ok"), Some(seq)) => seq
                .parse()
                .map(Published::Sent)
                .map_err(|_| bad_reply("publish.lua", &reply)),
            (Some("dup"), None) => Ok(Published::Dup),
            (Some("stale"), None) => Ok(Published::Stale),
            (Some("gone"), None) => Ok(Published::Gone),
            _ => Err(bad_reply("publish.lua", &reply)),
        }
    }

    /// Tells the other nodes that the drop's control log now has `len` entries.
    async fn announce_log(&self, id: &DropId, len: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd(self.publish_cmd);
        cmd.arg(channel(id)).arg(format!("!log:{len}"));
        within(self.limit(), cmd.query_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// The last `seq` published and up to `n` of the latest broadcasts, oldest first.
    async fn recent(&self, id: &DropId, n: usize) -> Result<(u64, Vec<(u64, String)>), StoreError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .get(key(id, "seq"))
            .cmd("XREVRANGE")
            .arg(channel(id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(n);
        let read = pipe.query_async(&mut conn);
        let (last, entries): (Option<u64>, Value) = within(self.limit(), read).await?;
        let mut out = entries_of(&entries)?;
        out.reverse();
        Ok((last.unwrap_or(0), out))
    }

    /// Makes sure the drop's next `seq` is above `seen` (the last one this node delivered);
    /// returns where Redis stood. Below `seen` means Redis lost broadcasts (it came back
    /// from an older snapshot): numbering then resumes after `seen`, never reusing one.
    async fn keep_seq_above(&self, id: &DropId, seen: u64) -> Result<u64, StoreError> {
        let mut inv = self.seq_floor.prepare_invoke();
        inv.key(key(id, "seq")).arg(seen);
        let mut conn = self.conn.clone();
        within(self.limit(), inv.invoke_async(&mut conn)).await
    }

    /// The broadcasts after `after`, up to `upto` (inclusive) or the latest, oldest first
    /// (at most a few thousand; what the stream no longer holds is not returned).
    async fn since(
        &self,
        id: &DropId,
        after: u64,
        upto: Option<u64>,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let mut conn = self.conn.clone();
        let end = upto.map_or_else(|| "+".to_owned(), |u| format!("{u}-1"));
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(channel(id))
            .arg(format!("{}-0", after + 1))
            .arg(end)
            .arg("COUNT")
            .arg(RANGE_MAX);
        let entries = within(self.limit(), cmd.query_async::<Value>(&mut conn)).await?;
        entries_of(&entries)
    }

    /// Reports this node's viewers of a drop (`leaving`: it holds none any more) and
    /// publishes the total if it changed; `deadline_ms` is when this report stops counting.
    async fn report_audience(
        &self,
        id: &DropId,
        report: &AudienceReport,
        now_ms: u64,
        deadline_ms: u64,
    ) -> Result<AudienceTotals, StoreError> {
        let mut inv = self.audience.prepare_invoke();
        for part in ["rec", "seq", "bus", "marks", "nodes", "uniq", "conf"] {
            inv.key(key(id, part));
        }
        inv.arg(&self.node)
            .arg(report.count)
            .arg(now_ms)
            .arg(deadline_ms)
            .arg(now_ms)
            .arg(self.publish_cmd)
            .arg(report.anonymous_joins);
        for viewer in report.new_ids.iter().take(IDS_PER_REPORT) {
            inv.arg(viewer);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<u64> = within(self.limit(), inv.invoke_async(&mut conn)).await?;
        match reply[..] {
            [now, peak, unique, _seq] => Ok(AudienceTotals { now, peak, unique }),
            _ => Err(bad_reply(
                "audience.lua",
                &reply.iter().map(u64::to_string).collect::<Vec<_>>(),
            )),
        }
    }
}

/// `[[id, [field, value, …]], …]` → `(seq, body)` pairs.
fn entries_of(value: &Value) -> Result<Vec<(u64, String)>, StoreError> {
    let bad = || bad_reply("XRANGE", &[format!("{value:?}")]);
    let Value::Array(entries) = value else {
        return match value {
            Value::Nil => Ok(Vec::new()),
            _ => Err(bad()),
        };
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let (id, fields): (String, Vec<String>) =
            redis::from_redis_value(entry).map_err(|_| bad())?;
        let seq = id
            .split_once('-')
            .and_then(|(s, _)| s.parse().ok())
            .ok_or_else(bad)?;
        let body = fields.get(1).cloned().ok_or_else(bad)?;
        out.push((seq, body));
    }
    Ok(out)
}
