//! Holds on Redis: redeeming a code, the sweeper ([`Store::expire_due`](crate::Store)),
//! the index that makes the sweeper cost what the due holds cost, and retiring a drop once
//! it is closed and settled (its keys then expire after the retention).
//!
//! # Whose clock
//!
//! With [`HoldClock::Redis`] (the default) every script that dates a claim or judges a
//! deadline (`claim.lua`, `settle.lua`, `due.lua`, `retire.lua`) reads the Redis server's
//! clock (`TIME`; Redis 7 replicates a script's effects, so this is allowed) and ignores
//! the `now_ms` the node passes: a node whose clock is off can neither redeem an expired
//! hold nor expire a live one early. [`HoldClock::Caller`] judges by the caller's `now_ms`
//! instead (the conformance suite runs on a virtual time).
//!
//! # The index of due holds
//!
//! `dw:holds-due` (sorted set) holds drop id → a time at or before the earliest deadline of
//! the drop's held claims. A sweep asks it one question (`due.lua`: the ids whose score has
//! come) and settles only those drops; with nothing due that is the whole sweep.
//!
//! In a cluster the index lives in another slot than any drop, so no drop's script may
//! write it; the node writes it around the scripts, so that a drop with a held claim is
//! always in the index at or before its deadline:
//!
//! - after a claim batch granted holds, `ZADD LT` of the earliest new deadline (it only
//!   ever lowers an entry, so any number of nodes may do it in any order);
//! - a sweep that settled a drop sets its entry to the drop's next deadline (or removes it),
//!   then reads the drop's earliest hold again and lowers the entry to it with `ZADD LT`.
//!   A claim granted before that read is seen by it; one granted after it writes its own
//!   `ZADD LT` after the sweep's write. Either way the entry ends at or before its deadline.
//! - A redemption leaves the entry as it is (too early is harmless: the sweep finds nothing
//!   due and moves it on).
//!
//! A node that dies between a claim and its index write leaves a hold the index does not
//! know; the slow pass finds it. Every [`REINDEX_EVERY`] (and at a node's first sweep) each
//! node walks `dw:live` — the drops not yet retired, so the open drops and the closed ones
//! with holds — and lowers each drop's entry to its earliest hold; a closed drop without
//! holds is retired there too (also one whose script ended with no node to say so).
//!
//! # Retirement and retention
//!
//! A drop is retired once it is closed and has no hold left: at the close, at the
//! redemption or sweep that settles its last hold, or by the slow pass. `retire.lua` gives
//! every key of the drop the deadline `expire_at` = now + the retention (kept in `conf`, so
//! keys a script makes later get it too); the node then drops it from `dw:live` and the
//! index of due holds, gives the drop's code index entries (`dw:code:CODE`, other slots) the
//! same deadline, and notes it in `dw:expiring` (id by `expire_at`), from which the slow
//! pass removes it from `dw:drops` once the keys are gone. With no retention the keys stay
//! and only the indexes change.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;
use redis::AsyncCommands;

use dropwire_core::{Claim, ClaimCode, ClaimState, DropId, DropState, TimelineView};

use super::conn::within;
use super::drops::{LIVE, READ_AHEAD, ids_in};
use super::reply::{bad_reply, parse, state};
use super::{DROPS, RedisLink, RedisStore, code_key, key};
use crate::StoreError;
use crate::sync::lock;

/// Drop id → a time at or before the earliest deadline of its holds.
pub(super) const HOLDS_DUE: &str = "dw:holds-due";
/// Retired drops: id → when their keys expire.
const EXPIRING: &str = "dw:expiring";
/// How often each node walks the live drops to repair the index of due holds.
pub const REINDEX_EVERY: Duration = Duration::from_secs(300);
/// Drops one sweep settles at most (the rest at the next one).
const DUE_STEP: usize = 256;
/// Holds one expiry script call settles at most.
const EXPIRE_STEP: usize = 500;
/// An indexed id older than this without a drop was never created: it leaves the indexes.
const ABANDONED_MS: u64 = 3_600_000;
/// Claim codes read from a drop's order list at a time, when their index entries expire.
const CODES_CHUNK: isize = 1000;

/// Whose clock judges hold deadlines on Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HoldClock {
    /// The Redis server's (`TIME`): one clock for every hub node.
    #[default]
    Redis,
    /// The `now_ms` the caller passes (a virtual time, as the conformance suite's).
    Caller,
}

/// The drop's keys besides `rec`, `conf` and `holds` (which `retire.lua` names first).
const OTHER_KEYS: [&str; 21] = [
    "log", "stock", "granted", "per", "claims", "order", "rids", "refused", "scores", "awards",
    "events", "coupons", "members", "seq", "bus", "marks", "nodes", "uniq", "draw", "draws",
    "entrants",
];

/// What redeeming a code in one drop came to.
enum Redeemed {
    Done(Box<Claim>, u64),
    NotHeld(ClaimState),
    NotHere,
}

/// What the slow pass reads of one drop.
struct Peek {
    record: Option<dropwire_core::DropRecord>,
    closed: bool,
    first_hold: Option<f64>,
}

/// After a claim batch granted holds: the drop's index entry at or before `earliest`
/// (`ZADD LT` only ever lowers it). A failure is logged: the slow pass repairs it.
pub(super) async fn note_holds(shared: &RedisLink, drop: &DropId, earliest: u64) {
    let mut conn = shared.conn.clone();
    let mut add = redis::cmd("ZADD");
    add.arg(HOLDS_DUE)
        .arg("LT")
        .arg(earliest)
        .arg(drop.as_str());
    if let Err(e) = within(shared.op_timeout, add.query_async::<i64>(&mut conn)).await {
        tracing::warn!(drop = %drop, error = %e, "hold not indexed for the sweeper; the slow pass will");
    }
}

impl RedisLink {
    /// The time argument of a script: the caller's `now_ms`, or '' for the server's clock.
    pub(super) fn now_arg(&self, now_ms: u64) -> String {
        match self.clock {
            HoldClock::Redis => String::new(),
            HoldClock::Caller => now_ms.to_string(),
        }
    }
}

fn score(raw: &str) -> Option<u64> {
    raw.parse::<f64>().ok().map(|s| s.max(0.0) as u64)
}

impl RedisStore {
    /// The time argument of a script: the caller's `now_ms`, or '' for the server's clock.
    pub(super) fn now_arg(&self, now_ms: u64) -> String {
        self.shared.now_arg(now_ms)
    }

    fn settle(&self, id: &DropId) -> redis::ScriptInvocation<'_> {
        let mut inv = self.shared.scripts.settle.prepare_invoke();
        for part in [
            "claims", "holds", "stock", "per", "events", "conf", "scores",
        ] {
            inv.key(key(id, part));
        }
        inv
    }

    async fn redeem_in(
        &self,
        id: &DropId,
        code: &ClaimCode,
        now: &str,
    ) -> Result<Redeemed, StoreError> {
        let mut inv = self.settle(id);
        inv.arg("redeem").arg(code.as_str()).arg(now);
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        match (
            reply.first().map(String::as_str),
            reply.get(1),
            reply.get(2),
        ) {
            (Some("OK"), Some(raw), Some(left)) => {
                let left = left.parse().map_err(|_| bad_reply("settle.lua", &reply))?;
                Ok(Redeemed::Done(parse(raw)?, left))
            }
            (Some("S"), Some(raw), None) => Ok(Redeemed::NotHeld(state(raw)?)),
            (Some("N"), None, None) => Ok(Redeemed::NotHere),
            _ => Err(bad_reply("settle.lua", &reply)),
        }
    }

    /// `redeem`: the drop the code index names, else every drop not yet retired (a crash
    /// between a claim and its index entry; a held claim is always in such a drop).
    pub(super) async fn redeem_code(
        &self,
        code: &ClaimCode,
        now_ms: u64,
    ) -> Result<Claim, StoreError> {
        let now = self.now_arg(now_ms);
        let indexed: Option<String> = within(self.limit(), self.conn().get(code_key(code))).await?;
        let indexed = indexed.and_then(|s| DropId::parse(&s).ok());
        let mut candidates: Vec<DropId> = indexed.iter().cloned().collect();
        let mut searched = false;
        let mut at = 0;
        loop {
            if at == candidates.len() {
                if searched {
                    return Err(StoreError::NoSuchClaim(code.clone()));
                }
                searched = true;
                let live = ids_in(&self.shared, LIVE).await?;
                candidates.extend(
                    live.into_iter()
                        .map(|(id, _)| id)
                        .filter(|id| Some(id) != indexed.as_ref()),
                );
                continue;
            }
            let id = &candidates[at];
            match self.redeem_in(id, code, &now).await? {
                Redeemed::Done(claim, left) => {
                    if left == 0 {
                        // Its last hold: a closed drop is settled now.
                        if let Err(e) = self.retire(id, false, &now).await {
                            tracing::warn!(drop = %id, error = %e, "cannot retire the drop; the slow pass will");
                        }
                    }
                    return Ok(*claim);
                }
                Redeemed::NotHeld(state) => {
                    return Err(StoreError::NotHeld {
                        code: code.clone(),
                        state,
                        drop: id.clone(),
                    });
                }
                Redeemed::NotHere => at += 1,
            }
        }
    }

    /// `expire_due`: the slow pass when it is time, then the drops the index says are due.
    pub(super) async fn sweep(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        if self.reindex_due()
            && let Err(e) = self.reindex(now_ms).await
        {
            tracing::warn!(error = %e, "cannot walk the live drops; will retry");
            self.reindex_soon();
        }
        let now = self.now_arg(now_ms);
        let mut inv = self.shared.scripts.due.prepare_invoke();
        inv.key(HOLDS_DUE).arg(&now).arg(DUE_STEP);
        let due: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        let mut out = Vec::new();
        let mut failed = None;
        for raw in due {
            let Ok(id) = DropId::parse(&raw) else {
                let mut conn = self.conn();
                let _ = within(self.limit(), conn.zrem::<_, _, ()>(HOLDS_DUE, &raw)).await;
                continue;
            };
            // One drop's trouble (its cluster shard away) must not hold up the others'.
            if let Err(e) = self.settle_drop(&id, &now, &mut out).await {
                tracing::warn!(drop = %id, error = %e, "cannot expire holds; will retry");
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// Expires what is due in one drop, a bounded step at a time, then moves its index
    /// entry on (module docs) and retires it if it is closed and settled.
    async fn settle_drop(
        &self,
        id: &DropId,
        now: &str,
        out: &mut Vec<Claim>,
    ) -> Result<(), StoreError> {
        let (next, closed) = loop {
            let mut inv = self.settle(id);
            inv.arg("expire").arg(now).arg(EXPIRE_STEP);
            let reply: Vec<String> =
                within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
            let [next, closed, expired @ ..] = &reply[..] else {
                return Err(bad_reply("settle.lua", &reply));
            };
            for raw in expired {
                out.push(parse(raw)?);
            }
            if expired.len() < EXPIRE_STEP {
                break (score(next), closed == "1");
            }
        };
        let mut conn = self.conn();
        match next {
            Some(at) => {
                within(
                    self.limit(),
                    conn.zadd::<_, _, _, ()>(HOLDS_DUE, id.as_str(), at),
                )
                .await?
            }
            None => within(self.limit(), conn.zrem::<_, _, ()>(HOLDS_DUE, id.as_str())).await?,
        }
        // The re-check: a hold granted meanwhile may have been indexed before that write.
        let first: Vec<(String, f64)> =
            within(self.limit(), conn.zrange_withscores(key(id, "holds"), 0, 0)).await?;
        match first.first() {
            Some((_, s)) if next.is_none_or(|n| (*s as u64) < n) => {
                let mut add = redis::cmd("ZADD");
                add.arg(HOLDS_DUE).arg("LT").arg(*s as u64).arg(id.as_str());
                within(self.limit(), add.query_async::<i64>(&mut conn)).await?;
            }
            Some(_) => {}
            None if closed => {
                self.retire(id, false, now).await?;
            }
            None => {}
        }
        Ok(())
    }

    fn reindex_due(&self) -> bool {
        let mut last = lock(&self.shared.reindexed);
        if last.is_some_and(|at| at.elapsed() < REINDEX_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// After a failed pass: try again at the next sweep.
    fn reindex_soon(&self) {
        *lock(&self.shared.reindexed) = None;
    }

    /// One drop as the slow pass needs it (one pipeline: one slot).
    async fn peek(&self, id: &DropId) -> Result<Peek, StoreError> {
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        pipe.get(key(id, "rec"))
            .lrange(key(id, "log"), 0, -1)
            .hexists(key(id, "conf"), "closed")
            .zrange_withscores(key(id, "holds"), 0, 0);
        type Read = (Option<String>, Vec<String>, bool, Vec<(String, f64)>);
        let (rec, log, closed, first): Read =
            within(self.limit(), pipe.query_async(&mut conn)).await?;
        let record = match rec {
            Some(rec) => {
                let mut record: dropwire_core::DropRecord = parse(&rec)?;
                record.log = log.iter().map(|e| parse(e)).collect::<Result<_, _>>()?;
                Some(record)
            }
            None => None,
        };
        Ok(Peek {
            record,
            closed,
            first_hold: first.first().map(|(_, s)| *s),
        })
    }

    /// The slow pass (module docs): every live drop's earliest hold into the index, closed
    /// and settled drops retired, expired drops out of `dw:drops`.
    pub(super) async fn reindex(&self, now_ms: u64) -> Result<(), StoreError> {
        let now = self.now_arg(now_ms);
        let live = ids_in(&self.shared, LIVE).await?;
        let store = self.clone();
        let mut peeks = stream::iter(live.clone())
            .map(move |(id, created)| {
                let store = store.clone();
                async move {
                    let peek = store.peek(&id).await;
                    (id, created, peek)
                }
            })
            .buffered(READ_AHEAD);
        let (mut indexed, mut retired) = (0usize, 0usize);
        while let Some((id, created, peek)) = peeks.next().await {
            let peek = match peek {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(drop = %id, error = %e, "cannot read a live drop");
                    continue;
                }
            };
            let Some(record) = peek.record else {
                if (created as u64).saturating_add(ABANDONED_MS) < now_ms {
                    // Indexed, never created (or expired): out of the indexes.
                    let (mut a, mut b) = (self.conn(), self.conn());
                    let _ = within(self.limit(), a.zrem::<_, _, ()>(LIVE, id.as_str())).await;
                    let _ = within(self.limit(), b.zrem::<_, _, ()>(DROPS, id.as_str())).await;
                }
                continue;
            };
            if let Some(first) = peek.first_hold {
                note_holds(&self.shared, &id, first as u64).await;
                indexed += 1;
                continue;
            }
            let ended = TimelineView::compute(&record.spec.script, &record.log, now_ms).state
                == DropState::Closed;
            if peek.closed || ended {
                match self.retire(&id, ended && !peek.closed, &now).await {
                    Ok(true) => retired += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(drop = %id, error = %e, "cannot retire a drop"),
                }
            }
        }
        let expired = self.forget_expired(&now).await?;
        tracing::debug!(
            live = live.len(),
            indexed,
            retired,
            expired,
            "walked the live drops"
        );
        Ok(())
    }

    /// Removes from `dw:drops` the retired drops whose keys have expired.
    async fn forget_expired(&self, now: &str) -> Result<usize, StoreError> {
        let mut inv = self.shared.scripts.due.prepare_invoke();
        inv.key(EXPIRING).arg(now).arg(10_000);
        let gone: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        if !gone.is_empty() {
            let mut conn = self.conn();
            within(self.limit(), conn.zrem::<_, _, ()>(DROPS, &gone)).await?;
            within(self.limit(), conn.zrem::<_, _, ()>(EXPIRING, &gone)).await?;
        }
        Ok(gone.len())
    }

    /// Retires the drop if it is closed (`mark_closed`: its timeline has ended; say so) and
    /// has no hold left; true if it is retired now.
    pub(super) async fn retire(
        &self,
        id: &DropId,
        mark_closed: bool,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.shared.scripts.retire.prepare_invoke();
        for part in ["rec", "conf", "holds"].iter().chain(OTHER_KEYS.iter()) {
            inv.key(key(id, part));
        }
        inv.arg(self.shared.retention_ms)
            .arg(if mark_closed { "1" } else { "0" })
            .arg(now);
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        let at = match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("retired"), Some(at)) => {
                score(at).ok_or_else(|| bad_reply("retire.lua", &reply))?
            }
            (Some("open" | "held" | "gone"), None) => return Ok(false),
            _ => return Err(bad_reply("retire.lua", &reply)),
        };
        if at > 0 {
            self.expire_codes(id, at).await?;
            let mut conn = self.conn();
            within(
                self.limit(),
                conn.zadd::<_, _, _, ()>(EXPIRING, id.as_str(), at),
            )
            .await?;
        }
        let (mut a, mut b) = (self.conn(), self.conn());
        within(self.limit(), a.zrem::<_, _, ()>(HOLDS_DUE, id.as_str())).await?;
        within(self.limit(), b.zrem::<_, _, ()>(LIVE, id.as_str())).await?;
        tracing::debug!(drop = %id, expire_at = at, "drop retired");
        Ok(true)
    }

    /// Gives the code index entries of a drop's claims the drop's deadline.
    async fn expire_codes(&self, id: &DropId, at: u64) -> Result<(), StoreError> {
        let mut from = 0isize;
        loop {
            let mut conn = self.conn();
            let read =
                conn.lrange::<_, Vec<String>>(key(id, "order"), from, from + CODES_CHUNK - 1);
            let codes = within(self.limit(), read).await?;
            let n = codes.len();
            let (conn, limit) = (self.conn(), self.limit());
            let writes = stream::iter(codes)
                .map(move |code| {
                    let mut conn = conn.clone();
                    async move {
                        let mut cmd = redis::cmd("PEXPIREAT");
                        cmd.arg(format!("dw:code:{code}")).arg(at);
                        within(limit, cmd.query_async::<i64>(&mut conn)).await
                    }
                })
                .buffer_unordered(READ_AHEAD);
            let results: Vec<Result<i64, StoreError>> = writes.collect().await;
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
            if (n as isize) < CODES_CHUNK {
                return Ok(());
            }
            from += CODES_CHUNK;
        }
    }
}
