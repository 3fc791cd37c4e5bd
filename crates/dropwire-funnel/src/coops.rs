//! Co-ops as the ledger keeps them: a co-op (`coops`) and its member makers
//! (`coop_makers`), beside the makers' other configuration, so every hub node sharing the
//! ledger sees the same ones. Validation is the caller's (`dropwire_core::coop`).
//!
//! The co-op KPIs ([`Ledger::coop_kpis`]) are each member's pooled KPIs (what the maker-level
//! summary gives: sums of the counts over the maker's drops, ratios of the sums) side by
//! side, and a total that sums the members' counts and recomputes the ratios from the sums.

use serde::Serialize;
use sqlx::Row;

use crate::db::{ms, unms};
use crate::kpi::DropKpis;
use crate::{Backend, FunnelError, Ledger};

/// A co-op, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Coop {
    pub id: String,
    pub name: String,
    /// The member makers, in the order they joined.
    pub makers: Vec<String>,
    pub created_ms: u64,
}

/// One maker's figures over all its drops: the counts summed, the ratios recomputed from
/// the sums; `peak_viewers` is the highest of any one drop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct MakerKpis {
    pub maker: String,
    /// How many drops the figures pool.
    pub drops: u64,
    #[serde(flatten)]
    pub kpis: DropKpis,
}

/// A co-op's KPIs: each member's, and their total.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CoopKpis {
    pub coop: String,
    /// One entry per member maker, in the co-op's order (a maker with no facts: zeros).
    pub makers: Vec<MakerKpis>,
    /// The members' counts and revenue summed, the ratios recomputed from the sums (never
    /// averaged); `peak_viewers` the highest; `repeat_90d_complete` whether every member's is.
    pub total: CoopTotal,
}

/// The sum of a co-op's members' KPIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CoopTotal {
    /// How many drops the figures pool, over every member.
    pub drops: u64,
    #[serde(flatten)]
    pub kpis: DropKpis,
}

/// Pools `drops` into one row: sums of the counts, ratios of the sums. The row's drop
/// fields say nothing (`drop_id` empty, `kind` `drop`, no title, recipe or start).
pub fn pool(drops: &[DropKpis]) -> DropKpis {
    let mut k = DropKpis::new(String::new());
    for d in drops {
        k.add(d);
    }
    k.finish();
    k
}

impl Ledger {
    /// A new co-op with `makers` (checked by the caller); `None` when the id is taken.
    pub async fn create_coop(
        &self,
        id: &str,
        name: &str,
        makers: &[String],
        now_ms: u64,
    ) -> Result<Option<Coop>, FunnelError> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "INSERT INTO coops (id, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_owned())
        .bind(name.to_owned())
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        // A millisecond apart, so that the members keep the order given.
        for (at, maker) in (now_ms..).zip(makers) {
            sqlx::query(
                "INSERT INTO coop_makers (coop_id, maker, added_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (coop_id, maker) DO NOTHING",
            )
            .bind(id.to_owned())
            .bind(maker.clone())
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.coop(id).await
    }

    /// Every co-op, oldest first.
    pub async fn coops(&self) -> Result<Vec<Coop>, FunnelError> {
        let rows = sqlx::query("SELECT id, name, created_ms FROM coops ORDER BY created_ms, id")
            .fetch_all(&self.read)
            .await?;
        let members =
            sqlx::query("SELECT coop_id, maker FROM coop_makers ORDER BY coop_id, added_ms, maker")
                .fetch_all(&self.read)
                .await?;
        let mut coops: Vec<Coop> = rows
            .iter()
            .map(|r| {
                Ok(Coop {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    makers: Vec::new(),
                    created_ms: unms(r.try_get("created_ms")?),
                })
            })
            .collect::<Result<_, FunnelError>>()?;
        for m in &members {
            let coop: String = m.try_get("coop_id")?;
            if let Some(c) = coops.iter_mut().find(|c| c.id == coop) {
                c.makers.push(m.try_get("maker")?);
            }
        }
        Ok(coops)
    }

    /// One co-op with its members. Read beside the writer (the public calendar reads it):
    /// a change committed before the call is seen.
    pub async fn coop(&self, id: &str) -> Result<Option<Coop>, FunnelError> {
        let Some(row) = sqlx::query("SELECT id, name, created_ms FROM coops WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        let members = sqlx::query(
            "SELECT maker FROM coop_makers WHERE coop_id = $1 ORDER BY added_ms, maker",
        )
        .bind(id.to_owned())
        .fetch_all(&self.read)
        .await?;
        Ok(Some(Coop {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            makers: members
                .iter()
                .map(|m| m.try_get("maker"))
                .collect::<Result<_, _>>()?,
            created_ms: unms(row.try_get("created_ms")?),
        }))
    }

    /// Renames co-op `id`; `None` when there is none.
    pub async fn rename_coop(&self, id: &str, name: &str) -> Result<Option<Coop>, FunnelError> {
        let done = sqlx::query("UPDATE coops SET name = $1 WHERE id = $2")
            .bind(name.to_owned())
            .bind(id.to_owned())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.coop(id).await
    }

    /// Deletes co-op `id` and its member list (the makers and their drops stay); whether
    /// there was one.
    pub async fn delete_coop(&self, id: &str) -> Result<bool, FunnelError> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM coop_makers WHERE coop_id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM coops WHERE id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds `maker` to co-op `id`, unless it has `max` members already: `None` when there is
    /// no such co-op, else the co-op (unchanged when the maker was a member already, or
    /// when it is full: compare its members).
    pub async fn add_coop_maker(
        &self,
        id: &str,
        maker: &str,
        max: usize,
        now_ms: u64,
    ) -> Result<Option<Coop>, FunnelError> {
        let mut tx = self.write.begin().await?;
        if self.backend == Backend::Postgres {
            // One change of a co-op's members at a time, so that the count below holds.
            sqlx::query("SELECT id FROM coops WHERE id = $1 FOR UPDATE")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let exists =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM coop_makers WHERE coop_id = $1")
                .bind(id.to_owned())
                .fetch_one(&mut *tx)
                .await?;
        let members = unms(exists.try_get("n")?);
        if members < max as u64 {
            sqlx::query(
                "INSERT INTO coop_makers (coop_id, maker, added_ms) \
                 SELECT id, $2, $3 FROM coops WHERE id = $1 \
                 ON CONFLICT (coop_id, maker) DO NOTHING",
            )
            .bind(id.to_owned())
            .bind(maker.to_owned())
            .bind(ms(now_ms))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.coop(id).await
    }

    /// Removes `maker` from co-op `id`: `None` when there is no such co-op, else whether it
    /// was a member.
    pub async fn remove_coop_maker(
        &self,
        id: &str,
        maker: &str,
    ) -> Result<Option<bool>, FunnelError> {
        let done = sqlx::query("DELETE FROM coop_makers WHERE coop_id = $1 AND maker = $2")
            .bind(id.to_owned())
            .bind(maker.to_owned())
            .execute(&self.write)
            .await?;
        if done.rows_affected() > 0 {
            return Ok(Some(true));
        }
        Ok(self.coop(id).await?.map(|_| false))
    }

    /// `maker`'s KPIs over all its drops, at `now_ms` (see [`MakerKpis`]).
    pub async fn maker_kpis(&self, maker: &str, now_ms: u64) -> Result<MakerKpis, FunnelError> {
        let drops = self.drop_kpis(maker, now_ms, None).await?;
        Ok(MakerKpis {
            maker: maker.to_owned(),
            drops: drops.len() as u64,
            kpis: pool(&drops),
        })
    }

    /// The KPIs of co-op `coop`'s `makers`, side by side and summed (see [`CoopKpis`]).
    pub async fn coop_kpis(
        &self,
        coop: &str,
        makers: &[String],
        now_ms: u64,
    ) -> Result<CoopKpis, FunnelError> {
        let mut each = Vec::with_capacity(makers.len());
        for m in makers {
            each.push(self.maker_kpis(m, now_ms).await?);
        }
        let pooled: Vec<DropKpis> = each.iter().map(|m| m.kpis.clone()).collect();
        let total = CoopTotal {
            drops: each.iter().map(|m| m.drops).sum(),
            kpis: pool(&pooled),
        };
        Ok(CoopKpis {
            coop: coop.to_owned(),
            makers: each,
            total,
        })
    }
}
