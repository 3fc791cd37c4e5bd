//! `RedisStore`: every piece of state in Redis, so any hub node can serve any viewer.
//!
//! Every key of one drop shares the hash tag `{drop:ID}` (`dw:{drop:ID}:stock`, …), so each
//! script touches one slot and runs unchanged on Redis Cluster. Claims, redemptions,
//! expiries, coupons and control-log appends are each one Lua script (in the `.lua` files
//! beside this one, sent with `EVALSHA` and reloaded on `NOSCRIPT`). Two keys live outside
//! the drops: the drop index `dw:drops` and the code index `dw:code:{CODE}`; they are
//! written by separate commands right after the drop or claim they index, and a code
//! missing from the index (a crash in between) is still found by searching the drops.
//!
//! Durability is Redis's: with `appendonly yes` and `appendfsync always` an acknowledged
//! claim survives a crash of Redis; with `wait_replicas` = N each granted claim also waits
//! (`WAIT`) until N replicas have it, and answers `unavailable` if they do not in time (the
//! hold then stands on the primary and expires if never redeemed).

use std::time::Duration;

use async_trait::async_trait;
use dropwire_core::claim::{Score, leaderboard};
use dropwire_core::protocol::StockItem;
use dropwire_core::{
    Claim, ClaimCode, ClaimOutcome, ClaimReason, ClaimState, ControlEntry, DropId, DropRecord,
};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use crate::{
    ClaimRequest, CouponOutcome, CouponRequest, DropFigures, Store, StoreError, new_claim_code,
};

#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub url: String,
    /// Replicas each granted claim must reach before it is acknowledged (0: do not wait).
    pub wait_replicas: u32,
    /// The longest any Redis call may take before the store answers `unavailable`.
    pub op_timeout: Duration,
}

impl RedisStoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            wait_replicas: 0,
            op_timeout: Duration::from_millis(500),
        }
    }
}

struct Scripts {
    create: Script,
    control: Script,
    claim: Script,
    settle: Script,
    coupon: Script,
}

/// The Redis backend. Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    scripts: std::sync::Arc<Scripts>,
    wait_replicas: u32,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("wait_replicas", &self.wait_replicas)
            .finish_non_exhaustive()
    }
}

fn key(id: &DropId, part: &str) -> String {
    format!("dw:{{drop:{id}}}:{part}")
}

const DROPS: &str = "dw:drops";

fn code_key(code: &ClaimCode) -> String {
    format!("dw:code:{code}")
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|source| StoreError::Corrupt { offset: 0, source })
}

impl RedisStore {
    /// Connects (and keeps reconnecting in the background when Redis goes away).
    pub async fn connect(config: RedisStoreConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(config.op_timeout)
            .set_response_timeout(config.op_timeout)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let con = tokio::time::timeout(
            config.op_timeout * 4,
            ConnectionManager::new_with_config(client, manager),
        )
        .await
        .map_err(|_| StoreError::Busy)??;
        Ok(RedisStore {
            con,
            scripts: std::sync::Arc::new(Scripts {
                create: Script::new(include_str!("create.lua")),
                control: Script::new(include_str!("control.lua")),
                claim: Script::new(include_str!("claim.lua")),
                settle: Script::new(include_str!("settle.lua")),
                coupon: Script::new(include_str!("coupon.lua")),
            }),
            wait_replicas: config.wait_replicas,
            op_timeout: config.op_timeout,
        })
    }

    fn con(&self) -> ConnectionManager {
        self.con.clone()
    }

    async fn drop_of(&self, code: &ClaimCode) -> Result<Option<DropId>, StoreError> {
        let indexed: Option<String> = self.con().get(code_key(code)).await?;
        if let Some(id) = indexed.and_then(|s| DropId::parse(&s).ok()) {
            return Ok(Some(id));
        }
        // Not indexed (a crash between the claim and its index): search the drops.
        let ids: Vec<String> = self.con().zrange(DROPS, 0, -1).await?;
        for id in ids.iter().filter_map(|s| DropId::parse(s).ok()) {
            let found: bool = self
                .con()
                .hexists(key(&id, "claims"), code.as_str())
                .await?;
            if found {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    fn settle(&self, id: &DropId) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts.settle.prepare_invoke();
        inv.key(key(id, "claims"))
            .key(key(id, "holds"))
            .key(key(id, "stock"))
            .key(key(id, "per"));
        inv
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
        let mut inv = self.scripts.create.prepare_invoke();
        inv.key(key(&id, "rec"))
            .key(key(&id, "conf"))
            .key(key(&id, "stock"));
        inv.arg(
            serde_json::to_string(&stored)
                .map_err(|source| StoreError::Corrupt { offset: 0, source })?,
        );
        inv.arg(record.spec.hold_s);
        for item in &record.spec.inventory {
            inv.arg(&item.sku)
                .arg(item.stock)
                .arg(item.per_viewer_limit);
        }
        let created: i64 = inv.invoke_async(&mut self.con()).await?;
        if created == 0 {
            return Err(StoreError::AlreadyExists(id));
        }
        let _: () = self
            .con()
            .zadd(DROPS, id.as_str(), record.created_ms)
            .await?;
        Ok(())
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        let (rec, log): (Option<String>, Vec<String>) = redis::pipe()
            .get(key(id, "rec"))
            .lrange(key(id, "log"), 0, -1)
            .query_async(&mut self.con())
            .await?;
        let Some(rec) = rec else { return Ok(None) };
        let mut record: DropRecord = parse(&rec)?;
        record.log = log.iter().map(|e| parse(e)).collect::<Result<_, _>>()?;
        Ok(Some(record))
    }

    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        let ids: Vec<String> = self.con().zrange(DROPS, 0, -1).await?;
        let mut out = Vec::new();
        for id in ids.iter().filter_map(|s| DropId::parse(s).ok()) {
            if let Some(r) = self.drop_record(&id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn append_control(
        &self,
        id: &DropId,
        expected_len: usize,
        entry: ControlEntry,
    ) -> Result<Vec<ControlEntry>, StoreError> {
        let exists: bool = self.con().exists(key(id, "rec")).await?;
        if !exists {
            return Err(StoreError::NoSuchDrop(id.clone()));
        }
        let json = serde_json::to_string(&entry)
            .map_err(|source| StoreError::Corrupt { offset: 0, source })?;
        let mut inv = self.scripts.control.prepare_invoke();
        inv.key(key(id, "log")).arg(expected_len).arg(json);
        let log: Option<Vec<String>> = inv.invoke_async(&mut self.con()).await?;
        let log = log.ok_or(StoreError::Conflict)?;
        log.iter().map(|e| parse(e)).collect()
    }

    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        let id = &req.drop_id;
        let code = new_claim_code()?;
        let mut inv = self.scripts.claim.prepare_invoke();
        for part in [
            "conf", "stock", "granted", "per", "claims", "order", "rids", "scores", "holds",
        ] {
            inv.key(key(id, part));
        }
        inv.arg(id.as_str())
            .arg(&req.sku)
            .arg(&req.viewer_id)
            .arg(&req.handle)
            .arg(&req.rid)
            .arg(req.now_ms)
            .arg(code.as_str());
        let reply: Vec<String> = inv.invoke_async(&mut self.con()).await?;
        match reply.first().map(String::as_str) {
            Some("G") => {
                let claim: Claim = parse(reply.get(1).map(String::as_str).unwrap_or(""))?;
                let _: () = self.con().set(code_key(&claim.code), id.as_str()).await?;
                if self.wait_replicas > 0 && claim.code == code {
                    let reached: u32 = redis::cmd("WAIT")
                        .arg(self.wait_replicas)
                        .arg(self.op_timeout.as_millis() as u64)
                        .query_async(&mut self.con())
                        .await?;
                    if reached < self.wait_replicas {
                        return Err(StoreError::Busy);
                    }
                }
                Ok(ClaimOutcome::Granted(claim))
            }
            Some("R") => {
                let reason = reply.get(1).map(|r| format!("\"{r}\"")).unwrap_or_default();
                let reason: ClaimReason = serde_json::from_str(&reason)
                    .map_err(|source| StoreError::Corrupt { offset: 0, source })?;
                Ok(ClaimOutcome::Refused(reason))
            }
            _ => Err(StoreError::NoSuchDrop(id.clone())),
        }
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        let id = self
            .drop_of(code)
            .await?
            .ok_or_else(|| StoreError::NoSuchClaim(code.clone()))?;
        let mut inv = self.settle(&id);
        inv.arg("redeem").arg(code.as_str()).arg(now_ms);
        let reply: Vec<String> = inv.invoke_async(&mut self.con()).await?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("OK"), Some(raw)) => parse(raw),
            (Some("S"), Some(state)) => {
                let state: ClaimState = serde_json::from_str(&format!("\"{state}\""))
                    .map_err(|source| StoreError::Corrupt { offset: 0, source })?;
                Err(StoreError::NotHeld {
                    code: code.clone(),
                    state,
                })
            }
            _ => Err(StoreError::NoSuchClaim(code.clone())),
        }
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        let ids: Vec<String> = self.con().zrange(DROPS, 0, -1).await?;
        let mut out = Vec::new();
        for id in ids.iter().filter_map(|s| DropId::parse(s).ok()) {
            let mut inv = self.settle(&id);
            inv.arg("expire").arg(now_ms);
            let expired: Vec<String> = inv.invoke_async(&mut self.con()).await?;
            for raw in expired {
                out.push(parse(&raw)?);
            }
        }
        Ok(out)
    }

    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError> {
        let codes: Vec<String> = self.con().lrange(key(id, "order"), 0, -1).await?;
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let raws: Vec<Option<String>> = self.con().hget(key(id, "claims"), &codes).await?;
        raws.iter().flatten().map(|r| parse(r)).collect()
    }

    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError> {
        let record = self
            .drop_record(id)
            .await?
            .ok_or_else(|| StoreError::NoSuchDrop(id.clone()))?;
        let (stock, claims, scores): (
            std::collections::HashMap<String, i64>,
            Vec<String>,
            Vec<String>,
        ) = redis::pipe()
            .hgetall(key(id, "stock"))
            .hvals(key(id, "claims"))
            .hvals(key(id, "scores"))
            .query_async(&mut self.con())
            .await?;
        let mut f = DropFigures {
            stock: record
                .spec
                .inventory
                .iter()
                .map(|i| StockItem {
                    sku: i.sku.clone(),
                    left: stock.get(&i.sku).copied().unwrap_or(0).max(0) as u32,
                })
                .collect(),
            ..DropFigures::default()
        };
        let mut claimers = std::collections::HashSet::new();
        for raw in &claims {
            let c: Claim = parse(raw)?;
            match c.state {
                ClaimState::Held => f.held += 1,
                ClaimState::Redeemed => f.redeemed += 1,
                ClaimState::Expired => f.expired += 1,
            }
            claimers.insert(c.viewer_id);
        }
        f.claimers = claimers.len() as u64;
        let scores: Vec<Score> = scores.iter().map(|s| parse(s)).collect::<Result<_, _>>()?;
        f.leaderboard = leaderboard(&scores, 10);
        Ok(f)
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        let code = new_claim_code()?.to_string();
        let mut inv = self.scripts.coupon.prepare_invoke();
        inv.key(key(&req.drop_id, "coupons"))
            .arg(&req.coupon)
            .arg(&req.viewer_id)
            .arg(req.limit)
            .arg(&code);
        let got: Option<String> = inv.invoke_async(&mut self.con()).await?;
        Ok(match got {
            Some(code) => CouponOutcome::Granted { code },
            None => CouponOutcome::SoldOut,
        })
    }

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        let end: u64 = self.con().incr(key(id, "seq"), n).await?;
        Ok(end - n + 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.con()).await?;
        Ok(())
    }
}
