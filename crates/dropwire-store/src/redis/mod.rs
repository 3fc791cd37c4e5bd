//! `RedisStore`: every piece of state in Redis, so any hub node can serve any viewer and a
//! node may die at any time.
//!
//! # Keys
//!
//! Every key of one drop shares the hash tag `{drop:ID}`, so every script touches one slot
//! and runs unchanged on Redis Cluster:
//!
//! | key `dw:{drop:ID}:…` | type | holds |
//! |---|---|---|
//! | `rec` | string | the drop record as JSON (without its log) |
//! | `log` | list | the control log, one JSON entry each |
//! | `conf` | hash | `hold_s`, `limit:SKU`, `closed` once the drop closed; with the bus, `timeline` (live at least once) and `open:SKU` (revealed), by which `claim.lua` checks the window; `expire_at` once retired (`holds`) |
//! | `stock` / `granted` | hash | per SKU: units left / claims granted so far (the next rank) |
//! | `per` | hash | per SKU and viewer: live (held or redeemed) claims |
//! | `claims` / `order` | hash / list | code → claim JSON / codes in the order granted |
//! | `rids` | hash | viewer and rid → code of the claim it was granted |
//! | `refused` | hash | viewer → its last [`REFUSED_RIDS_KEPT`](dropwire_core::claim::REFUSED_RIDS_KEPT) refused rids and why |
//! | `scores` | hash | viewer → leaderboard score JSON (claims' points less expired holds', plus quests') |
//! | `awards` | hash | quest and viewer → `{rid, points}` of the quest's award (`quests`) |
//! | `holds` | sorted set | codes of held claims by deadline (the sweeper's work list in the drop) |
//! | `events` | stream | claimed / redeemed / expired, the last ~10 000 |
//! | `coupons` | hash | coupon and viewer → personal code; per coupon a count |
//! | `members` | set | the viewers of the drop's early-access segment |
//! | `seq` | string | the last broadcast sequence number given out |
//! | `bus` | stream (and pub/sub channel) | the last ~4,096 broadcasts, id `seq-1` ([`bus`]) |
//! | `marks` | hash | cues and state changes published once; versions of figures; viewer peak |
//! | `nodes` / `uniq` | hash / HyperLogLog | each hub node's viewer count and deadline / unique viewers |
//!
//! Some keys live outside the drops: the drop indexes `dw:drops` (every drop) and `dw:live`
//! (the drops not yet retired: `drops`), both sorted sets of id by creation time; the code
//! index `dw:code:CODE` (drop id); the index of drops with holds `dw:holds-due` and the
//! retired drops' expiry times `dw:expiring` (`holds`). In a cluster they hash to other
//! slots than the drop, so they are written by separate commands, not inside the drop's
//! scripts: the drop indexes *before* the drop is created (a crash in between leaves an id
//! with no drop, which readers skip), a code's index entry right *after* its claim is
//! granted and before the viewer hears of it (a crash in between leaves a claim with no
//! index entry, which `redeem` still finds by asking every live drop). Claim codes are
//! unique within a drop (the script checks); across drops they rely on their 80 random bits
//! (the index is written with `NX`, so a collision would leave the first drop's entry).
//!
//! Once a drop is closed and its holds are settled it is *retired*: with a retention set,
//! every key of it (and its code index entries) expires that long afterwards (`holds`).
//!
//! # Scripts
//!
//! Claims, redemptions, expiries, coupons, control-log appends and sequence reservations are
//! each one Lua script (the `.lua` files beside this one), loaded at connect and sent with
//! `EVALSHA`, reloaded on `NOSCRIPT` (after a Redis restart). The claim rules the scripts
//! apply (points per rank, the refused-rid cap) are the core's, rendered in at connect
//! (`rules`). Concurrent claims on one
//! store are batched (`batch`): one script call decides a whole batch in arrival order,
//! every claim before the first write. The sweeper ([`Store::expire_due`]) may run on every
//! node at once: each expiry is one step of a script that removes the hold from the
//! deadline set, so no claim is expired twice; it visits only the drops the index of due
//! holds names (`holds`). Deadlines are judged by the Redis server's clock (`TIME`) by
//! default ([`HoldClock`]). Keyspace notifications are not used.
//!
//! # Durability
//!
//! Redis decides what survives: with `appendonly yes` and `appendfsync always` Redis
//! fsyncs a script's writes before it replies, so an acknowledged claim survives a crash
//! of Redis (and a batch shares one fsync); with `appendfsync everysec` up to a second may
//! be lost when the machine (not just Redis) crashes. With `wait_replicas` = N every
//! batch with a granted claim waits (`WAIT`, in a cluster on the primary of the drop's
//! slot) until N replicas have it — on a connection of the claims' own, so nothing else
//! queues behind the wait — and answers `unavailable` if they do not confirm within
//! `op_timeout`; the hold then stands on the primary (a retry with the same rid gets it
//! and waits again) and expires if never redeemed.
//!
//! # Connections
//!
//! One node: `nodes` is one `redis://host:port/db`, served by a reconnecting multiplexed
//! connection. A cluster: set `cluster` and give one or more nodes (a list such as
//! `redis://10.0.0.1:7000,redis://10.0.0.2:7000` is read by [`parse_nodes`], once); the
//! database is always 0. Every call
//! is bounded by `op_timeout` (twice it where a call may have to reconnect first), so when
//! Redis is away callers hear an error for which [`StoreError::is_unavailable`] is true
//! instead of waiting, and calls work again as soon as Redis is back.

mod batch;
pub mod bus;
mod conn;
mod drops;
mod holds;
mod quests;
mod reply;
mod rules;
mod subscriber;
mod viewers;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dropwire_core::claim::Score;
use dropwire_core::protocol::StockItem;
use dropwire_core::timeline::ControlAction;
use dropwire_core::{Claim, ClaimCode, ClaimOutcome, ControlEntry, DropId, DropRecord};
use redis::Script;

use self::batch::{Answer, BatchedClaim, Batcher};
use self::conn::{Conn, within};
use self::drops::{DROPS, LIVE};
pub use self::holds::{HoldClock, REINDEX_EVERY};
use self::reply::{bad_reply, parse, to_json};
use crate::{
    AwardOutcome, ClaimRequest, CouponOutcome, CouponRequest, DropFigures, QuestAward, Store,
    StoreError, new_claim_code,
};

/// How to reach Redis. [`RedisStoreConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    /// `redis://host:port/db`; with `cluster`, one or more seed nodes (see [`parse_nodes`]).
    pub nodes: Vec<String>,
    /// Replicas each granted claim must reach before it is acknowledged (0: do not wait).
    pub wait_replicas: u32,
    /// The longest a Redis call may take before the store answers `unavailable`.
    pub op_timeout: Duration,
    /// Talk to a Redis Cluster (`nodes` are seed nodes) instead of one node.
    pub cluster: bool,
    /// The most claims one script call decides; 1 sends each claim on its own.
    pub max_batch: usize,
    /// How long the keys of a drop are kept once it is closed and its holds are settled
    /// (`None`: for ever). What the funnel ledger recorded stays.
    pub retention: Option<Duration>,
    /// Whose clock judges hold deadlines ([`HoldClock::Redis`] unless a test says otherwise).
    pub clock: HoldClock,
}

impl RedisStoreConfig {
    /// One Redis node: no replica wait, [`DEFAULT_OP_TIMEOUT`], batches of up to 64,
    /// keys of retired drops kept for [`DEFAULT_RETENTION`], the server's clock.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            nodes: vec![url.into()],
            wait_replicas: 0,
            op_timeout: DEFAULT_OP_TIMEOUT,
            cluster: false,
            max_batch: 64,
            retention: Some(DEFAULT_RETENTION),
            clock: HoldClock::Redis,
        }
    }

    /// A Redis Cluster reached through the given seed nodes (`redis://host:port` each).
    pub fn cluster<S: AsRef<str>>(nodes: &[S]) -> Self {
        RedisStoreConfig::of(nodes.iter().map(|n| n.as_ref().to_owned()).collect(), true)
    }

    /// The nodes [`parse_nodes`] read, of a cluster or (one) of a single Redis.
    pub fn of(nodes: Vec<String>, cluster: bool) -> Self {
        RedisStoreConfig {
            nodes,
            cluster,
            ..RedisStoreConfig::new(String::new())
        }
    }
}

/// The nodes a list of Redis URLs names: separated by commas, blanks around them ignored;
/// each must be `redis://` or `rediss://`. The one place such a list is read (the server's
/// configuration parses `--redis` with it, once).
pub fn parse_nodes(list: &str) -> Result<Vec<String>, &'static str> {
    let nodes: Vec<String> = list.split(',').map(|u| u.trim().to_owned()).collect();
    if nodes
        .iter()
        .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
    {
        return Err("must be redis:// or rediss:// URLs");
    }
    Ok(nodes)
}

/// The longest a Redis call may take unless configured otherwise.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);

/// How long a retired drop's keys are kept unless configured otherwise: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

struct Scripts {
    create: Script,
    control: Script,
    claim: Script,
    settle: Script,
    coupon: Script,
    seq: Script,
    admit: Script,
    erase: Script,
    due: Script,
    retire: Script,
    award: Script,
}

impl Scripts {
    fn all(&self) -> [&Script; 11] {
        [
            &self.create,
            &self.control,
            &self.claim,
            &self.settle,
            &self.coupon,
            &self.seq,
            &self.admit,
            &self.erase,
            &self.due,
            &self.retire,
            &self.award,
        ]
    }
}

/// The link to Redis every call needs: the connections, the scripts, the limits.
struct RedisLink {
    conn: Conn,
    /// Claims' own connection when they wait for replicas: `WAIT` blocks the connection
    /// it is sent on, and the bus, figures and `/readyz` must not queue behind it.
    /// Otherwise the same connection as `conn`.
    claim_conn: Conn,
    /// Where Redis is (the bus opens its own subscription connection there).
    nodes: Vec<String>,
    scripts: Scripts,
    wait_replicas: u32,
    op_timeout: Duration,
    /// The retention in ms (0: keep for ever).
    retention_ms: u64,
    clock: HoldClock,
    /// When this node last walked the live drops (`holds`).
    reindexed: Mutex<Option<Instant>>,
}

impl RedisLink {
    /// The bound for one call that may have to reconnect (or reload a script) first.
    fn limit(&self) -> Duration {
        self.op_timeout * 2
    }
}

/// The Redis backend. Cheap to clone; clones share one connection and one batcher.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<RedisLink>,
    batcher: Option<Arc<Batcher>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &matches!(self.shared.conn, Conn::Cluster(_)))
            .field("wait_replicas", &self.shared.wait_replicas)
            .field("op_timeout", &self.shared.op_timeout)
            .field("batching", &self.batcher.is_some())
            .finish_non_exhaustive()
    }
}

fn key(id: &DropId, part: &str) -> String {
    format!("dw:{{drop:{id}}}:{part}")
}

fn code_key(code: &ClaimCode) -> String {
    format!("dw:code:{code}")
}

impl RedisStore {
    /// Connects and loads the scripts. Must run inside a Tokio runtime, which then also
    /// runs the connection's and the batcher's tasks; the connection keeps reconnecting in
    /// the background when Redis goes away.
    pub async fn connect(config: RedisStoreConfig) -> Result<RedisStore, StoreError> {
        let conn = conn::connect(&config).await?;
        let claim_conn = if config.wait_replicas > 0 {
            // `WAIT` takes up to `op_timeout` itself: the connection must not give up first.
            let patient = RedisStoreConfig {
                op_timeout: config.op_timeout * 2,
                ..config.clone()
            };
            conn::connect(&patient).await?
        } else {
            conn.clone()
        };
        let shared = Arc::new(RedisLink {
            conn,
            claim_conn,
            nodes: config.nodes.clone(),
            scripts: Scripts {
                create: Script::new(include_str!("create.lua")),
                control: Script::new(include_str!("control.lua")),
                claim: Script::new(&rules::render(include_str!("claim.lua"))),
                settle: Script::new(&rules::render(include_str!("settle.lua"))),
                coupon: Script::new(include_str!("coupon.lua")),
                seq: Script::new(include_str!("seq.lua")),
                admit: Script::new(include_str!("admit.lua")),
                erase: Script::new(include_str!("erase.lua")),
                due: Script::new(include_str!("due.lua")),
                retire: Script::new(include_str!("retire.lua")),
                award: Script::new(&rules::render(include_str!("award.lua"))),
            },
            wait_replicas: config.wait_replicas,
            op_timeout: config.op_timeout,
            retention_ms: config
                .retention
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            clock: config.clock,
            reindexed: Mutex::new(None),
        });
        for script in shared.scripts.all() {
            let mut conn = shared.conn.clone();
            within(
                shared.limit(),
                script.prepare_invoke().load_async(&mut conn),
            )
            .await?;
        }
        drops::fill_live(&shared).await?;
        let batcher = (config.max_batch > 1)
            .then(|| Arc::new(Batcher::start(Arc::clone(&shared), config.max_batch)));
        Ok(RedisStore { shared, batcher })
    }

    fn conn(&self) -> Conn {
        self.shared.conn.clone()
    }

    fn limit(&self) -> Duration {
        self.shared.limit()
    }

    async fn claim_once(&self, claim: BatchedClaim) -> Result<Answer, StoreError> {
        match &self.batcher {
            Some(batcher) => batcher.claim(claim, self.shared.op_timeout * 4).await,
            None => {
                let drop = claim.req.drop_id.clone();
                batch::run(&self.shared, &drop, std::slice::from_ref(&claim))
                    .await?
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Err(bad_reply("claim.lua", &[])))
            }
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_drop(&self, record: DropRecord) -> Result<(), StoreError> {
        let id = record.id.clone();
        let stored = DropRecord {
            log: Vec::new(),
            ..record.clone()
        };
        self.index_new(&id, record.created_ms).await?;
        let mut inv = self.shared.scripts.create.prepare_invoke();
        inv.key(key(&id, "rec"))
            .key(key(&id, "conf"))
            .key(key(&id, "stock"));
        inv.arg(to_json(&stored)?).arg(record.spec.hold_s);
        for item in &record.spec.inventory {
            inv.arg(&item.sku)
                .arg(item.stock)
                .arg(item.per_viewer_limit);
        }
        let created: i64 = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        if created == 0 {
            return Err(StoreError::AlreadyExists(id));
        }
        Ok(())
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        self.record_of(id).await
    }

    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        self.records(&self.drop_ids().await?).await
    }

    async fn open_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        let live = drops::ids_in(&self.shared, LIVE).await?;
        let ids: Vec<DropId> = live.into_iter().map(|(id, _)| id).collect();
        self.records(&ids).await
    }

    async fn append_control(
        &self,
        id: &DropId,
        expected_len: usize,
        entry: ControlEntry,
    ) -> Result<Vec<ControlEntry>, StoreError> {
        let closes = matches!(entry.action, ControlAction::Close);
        let entry_at = entry.at_ms;
        let mut inv = self.shared.scripts.control.prepare_invoke();
        inv.key(key(id, "rec"))
            .key(key(id, "log"))
            .key(key(id, "conf"));
        inv.arg(expected_len)
            .arg(to_json(&entry)?)
            .arg(if closes { "1" } else { "0" });
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        match reply.first().map(String::as_str) {
            Some("OK") if closes => {
                let log: Result<Vec<ControlEntry>, StoreError> =
                    reply[1..].iter().map(|e| parse(e)).collect();
                // Closed with no hold left: settled now (else at its last hold's end).
                let now = self.now_arg(entry_at);
                if let Err(e) = self.retire(id, false, &now).await {
                    tracing::warn!(drop = %id, error = %e, "cannot retire the drop; the slow pass will");
                }
                log
            }
            Some("OK") => reply[1..].iter().map(|e| parse(e)).collect(),
            Some("C") => Err(StoreError::Conflict),
            Some("X") => Err(StoreError::NoSuchDrop(id.clone())),
            _ => Err(bad_reply("control.lua", &reply)),
        }
    }

    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        // A taken code writes nothing; three in a row (80 random bits each) means the
        // randomness is broken, not bad luck.
        for _ in 0..3 {
            let batched = BatchedClaim {
                req: req.clone(),
                code: new_claim_code()?,
            };
            match self.claim_once(batched).await? {
                Answer::Granted(claim) => return Ok(ClaimOutcome::Granted(*claim)),
                Answer::Refused(reason) => return Ok(ClaimOutcome::Refused(reason)),
                Answer::CodeTaken => continue,
                Answer::Entered(draw_at_ms) => return Ok(ClaimOutcome::Entered { draw_at_ms }),
            }
        }
        Err(StoreError::CodesTaken(3))
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        self.redeem_code(code, now_ms).await
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        self.sweep(now_ms).await
    }

    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError> {
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        pipe.exists(key(id, "rec")).lrange(key(id, "order"), 0, -1);
        let read = pipe.query_async(&mut conn);
        let (exists, codes): (bool, Vec<String>) = within(self.limit(), read).await?;
        if !exists {
            return Err(StoreError::NoSuchDrop(id.clone()));
        }
        let mut out = Vec::with_capacity(codes.len());
        for chunk in codes.chunks(1000) {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(key(id, "claims")).arg(chunk);
            let raws: Vec<Option<String>> =
                within(self.limit(), cmd.query_async(&mut conn)).await?;
            for raw in raws.iter().flatten() {
                out.push(parse(raw)?);
            }
        }
        Ok(out)
    }

    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError> {
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        // Atomic: the counts and the stock are of one moment (the hub derives a version
        // from the counts, so a figure published later is never older).
        pipe.atomic()
            .get(key(id, "rec"))
            .hgetall(key(id, "stock"))
            .hvals(key(id, "claims"))
            .hvals(key(id, "scores"))
            .hlen(key(id, "awards"));
        let read = pipe.query_async(&mut conn);
        type Read = (
            Option<String>,
            std::collections::HashMap<String, i64>,
            Vec<String>,
            Vec<String>,
            u64,
        );
        let (rec, stock, claims, scores, awards): Read = within(self.limit(), read).await?;
        let Some(rec) = rec else {
            return Err(StoreError::NoSuchDrop(id.clone()));
        };
        let record: DropRecord = parse(&rec)?;
        let stock = record
            .spec
            .inventory
            .iter()
            .map(|i| StockItem {
                sku: i.sku.clone(),
                left: u32::try_from(stock.get(&i.sku).copied().unwrap_or(0).max(0))
                    .unwrap_or(u32::MAX),
            })
            .collect();
        let claims: Vec<Claim> = claims.iter().map(|c| parse(c)).collect::<Result<_, _>>()?;
        let scores: Vec<Score> = scores.iter().map(|s| parse(s)).collect::<Result<_, _>>()?;
        let mut f = DropFigures::tally(stock, &claims, scores.iter());
        f.awards = awards;
        Ok(f)
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        let code = new_claim_code()?.to_string();
        let mut inv = self.shared.scripts.coupon.prepare_invoke();
        inv.key(key(&req.drop_id, "rec"))
            .key(key(&req.drop_id, "coupons"));
        inv.arg(&req.coupon)
            .arg(&req.viewer_id)
            .arg(req.limit)
            .arg(&code);
        let reply: Vec<String> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("G"), Some(code)) => Ok(CouponOutcome::Granted { code: code.clone() }),
            (Some("S"), None) => Ok(CouponOutcome::SoldOut),
            (Some("X"), None) => Err(StoreError::NoSuchDrop(req.drop_id.clone())),
            _ => Err(bad_reply("coupon.lua", &reply)),
        }
    }

    async fn award(&self, award: QuestAward) -> Result<AwardOutcome, StoreError> {
        self.award_quest(award).await
    }

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        let mut inv = self.shared.scripts.seq.prepare_invoke();
        inv.key(key(id, "rec")).key(key(id, "seq")).arg(n);
        let end: Option<u64> = within(self.limit(), inv.invoke_async(&mut self.conn())).await?;
        let end = end.ok_or_else(|| StoreError::NoSuchDrop(id.clone()))?;
        Ok(end + 1 - n)
    }

    async fn admit(&self, drop: &DropId, viewer_id: &str) -> Result<(), StoreError> {
        self.admit_to(drop, viewer_id).await
    }

    async fn erase_viewer(&self, viewer_id: &str, tombstone: &str) -> Result<u64, StoreError> {
        self.erase_everywhere(viewer_id, tombstone).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<()>(&mut conn);
        within(self.shared.op_timeout, ping).await?;
        Ok(())
    }
}
