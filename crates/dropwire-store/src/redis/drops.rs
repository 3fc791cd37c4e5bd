//! Drops on Redis as lists: every drop (`dw:drops`), the drops that may still change
//! (`dw:live`), and reading many records in few round trips.
//!
//! `dw:live` (sorted set, id by creation time) holds every drop not yet retired: open, or
//! closed with holds still to settle. It is written before the drop is created, like
//! `dw:drops`, and an id leaves it only when the drop is retired (`holds`), so it is a
//! superset of the open drops: [`Store::open_drops`](crate::Store::open_drops) reads it,
//! and so the hub's start-up, its ledger reconciliation and the sweeper's slow pass cost
//! what the open drops cost, not what every drop ever made costs.
//!
//! A Redis written by an older build has no `dw:live`, and during a rolling update older
//! nodes still create drops without it: each node, as it connects, adds to `dw:live` the
//! drops of `dw:drops` created since an hour before the newest one seen then
//! (`dw:live:seen`; all of them the first time), and the slow pass retires the closed ones
//! among them.
//!
//! Records are read with one pipeline per drop (its record and its log share a slot),
//! [`READ_AHEAD`] drops at a time on the multiplexed connection: on one node or on a
//! cluster alike, the round trips are a few per thousand drops, not two per drop.

use futures_util::StreamExt;
use futures_util::stream;
use redis::AsyncCommands;

use dropwire_core::{DropId, DropRecord};

use super::conn::within;
use super::reply::parse;
use super::{RedisLink, RedisStore, key};
use crate::StoreError;

/// Every drop ever created: id by creation time.
pub(super) const DROPS: &str = "dw:drops";
/// The drops not yet retired: id by creation time.
pub(super) const LIVE: &str = "dw:live";
/// The creation time of the newest drop `dw:live` was filled with from `dw:drops`.
const LIVE_SEEN: &str = "dw:live:seen";
/// How far before [`LIVE_SEEN`] a filling looks again (nodes' clocks differ).
const LIVE_SLACK_MS: f64 = 3_600_000.0;
/// Requests in flight at once when reading many drops.
pub(super) const READ_AHEAD: usize = 256;
/// Members one `ZADD` adds at most when filling `dw:live`.
const ZADD_CHUNK: usize = 1000;

/// Ids of a sorted set of drops with their scores, oldest first; ids that do not parse are
/// left out.
pub(super) async fn ids_in(
    shared: &RedisLink,
    index: &str,
) -> Result<Vec<(DropId, f64)>, StoreError> {
    let mut conn = shared.conn.clone();
    let read = conn.zrange_withscores::<_, Vec<(String, f64)>>(index, 0, -1);
    let raw = within(shared.limit(), read).await?;
    Ok(raw
        .into_iter()
        .filter_map(|(id, score)| DropId::parse(&id).ok().map(|id| (id, score)))
        .collect())
}

/// Adds to `dw:live` the drops of `dw:drops` created since [`LIVE_SLACK_MS`] before the
/// newest one a previous filling saw (every drop the first time): see the module docs.
/// Idempotent (`NX`): nodes starting together may both do it.
pub(super) async fn fill_live(shared: &RedisLink) -> Result<(), StoreError> {
    let mut conn = shared.conn.clone();
    let seen: Option<f64> = within(shared.limit(), conn.get(LIVE_SEEN)).await?;
    let from = seen.map_or(f64::NEG_INFINITY, |s| s - LIVE_SLACK_MS);
    let read = conn.zrangebyscore_withscores::<_, _, _, Vec<(String, f64)>>(DROPS, from, "+inf");
    let recent = within(shared.limit(), read).await?;
    for chunk in recent.chunks(ZADD_CHUNK) {
        let mut add = redis::cmd("ZADD");
        add.arg(LIVE).arg("NX");
        for (id, created) in chunk {
            add.arg(*created).arg(id);
        }
        within(shared.limit(), add.query_async::<i64>(&mut conn)).await?;
    }
    let newest = recent
        .iter()
        .map(|(_, c)| *c)
        .fold(seen.unwrap_or(0.0), f64::max);
    if seen.is_none() && !recent.is_empty() {
        tracing::info!(
            drops = recent.len(),
            "indexed every drop as live once; the sweeper retires the closed ones"
        );
    }
    let mut set = redis::cmd("SET");
    set.arg(LIVE_SEEN).arg(newest as u64);
    within(shared.limit(), set.query_async::<()>(&mut conn)).await?;
    Ok(())
}

impl RedisStore {
    /// Records of `ids`, in that order; ids without a record (never created, or expired
    /// after the retention) are left out.
    pub(super) async fn records(&self, ids: &[DropId]) -> Result<Vec<DropRecord>, StoreError> {
        // Owned futures: borrowed ones trip the compiler's `Send` check inside async traits.
        let store = self.clone();
        let reads = stream::iter(ids.to_vec())
            .map(move |id| {
                let store = store.clone();
                async move { store.record_of(&id).await }
            })
            .buffered(READ_AHEAD);
        let found: Vec<Result<Option<DropRecord>, StoreError>> = reads.collect().await;
        let mut out = Vec::with_capacity(found.len());
        for record in found {
            if let Some(record) = record? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// One drop's record with its log (one pipeline: both keys share the drop's slot).
    pub(super) async fn record_of(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        pipe.get(key(id, "rec")).lrange(key(id, "log"), 0, -1);
        let read = pipe.query_async(&mut conn);
        let (rec, log): (Option<String>, Vec<String>) = within(self.limit(), read).await?;
        let Some(rec) = rec else { return Ok(None) };
        let mut record: DropRecord = parse(&rec)?;
        record.log = log.iter().map(|e| parse(e)).collect::<Result<_, _>>()?;
        Ok(Some(record))
    }

    /// Every drop id, oldest first.
    pub(super) async fn drop_ids(&self) -> Result<Vec<DropId>, StoreError> {
        let ids = ids_in(&self.shared, DROPS).await?;
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// Indexes a drop about to be created: in `dw:drops` and `dw:live` (each its own slot
    /// in a cluster, so two commands, sent together). An indexed id without a drop is
    /// skipped by readers; a drop nobody could list would never be swept.
    pub(super) async fn index_new(&self, id: &DropId, created_ms: u64) -> Result<(), StoreError> {
        let options = redis::SortedSetAddOptions::add_only();
        let (mut a, mut b) = (self.conn(), self.conn());
        let all = a.zadd_options::<_, _, _, ()>(DROPS, id.as_str(), created_ms, &options);
        let live = b.zadd_options::<_, _, _, ()>(LIVE, id.as_str(), created_ms, &options);
        let (all, live) = tokio::join!(within(self.limit(), all), within(self.limit(), live));
        all.and(live)
    }
}
