//! Writing facts (a batch per transaction, each id once) and reading them back.

use dropwire_core::{Fact, FactKind};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{ms, placeholders, unms};
use crate::{FunnelError, Ledger};

/// Rows per INSERT statement (7 parameters each, well under every database's limit).
const ROWS_PER_STATEMENT: usize = 100;
/// The most facts one read returns.
pub const MAX_PAGE: u32 = 1000;

/// A fact as the ledger keeps it: with its place in the ledger's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct StoredFact {
    /// The order facts were recorded in (increasing; gaps are possible).
    pub seq: i64,
    #[serde(flatten)]
    pub fact: Fact,
}

/// Which facts to read: every field narrows, `after` pages on.
#[derive(Debug, Clone, Default)]
pub struct FactFilter {
    /// Only facts recorded after this `seq`.
    pub after: Option<i64>,
    pub drop_id: Option<String>,
    pub viewer_id: Option<String>,
    pub kind: Option<FactKind>,
    /// Only this maker's facts.
    pub maker: Option<String>,
    /// At most this many ([`MAX_PAGE`] when unset or larger).
    pub limit: Option<u32>,
}

pub(crate) const COLUMNS: &str = "seq, id, kind, maker, drop_id, viewer_id, at_ms, detail";

pub(crate) fn read_fact(row: &AnyRow) -> Result<StoredFact, FunnelError> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let kind = FactKind::parse(&kind)
        .ok_or_else(|| FunnelError::corrupt(&id, format!("unknown kind {kind:?}")))?;
    let detail: String = row.try_get("detail")?;
    let detail = serde_json::from_str(&detail).map_err(|e| FunnelError::corrupt(&id, e))?;
    Ok(StoredFact {
        seq: row.try_get("seq")?,
        fact: Fact {
            kind,
            maker: row.try_get("maker")?,
            drop_id: row.try_get("drop_id")?,
            viewer_id: row.try_get("viewer_id")?,
            at_ms: unms(row.try_get("at_ms")?),
            detail,
            id,
        },
    })
}

/// Inserts `facts` inside `tx`, skipping ids already there, and writes in the same
/// transaction what each new fact sets off (`consequences`: webhook messages, a follow-up
/// coupon, nurture timers). Returns how many were new.
pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    facts: &[Fact],
) -> Result<u64, FunnelError> {
    insert_as(tx, facts, Origin::Live).await
}

/// Where facts come from: the hub, as things happen (they set off webhooks, coupons and
/// nurture timers), or an imported history (it builds the KPI rollups only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Live,
    History,
}

pub(crate) async fn insert_as(
    tx: &mut Transaction<'static, Any>,
    facts: &[Fact],
    origin: Origin,
) -> Result<u64, FunnelError> {
    let mut new = Vec::new();
    for chunk in facts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO facts (id, kind, maker, drop_id, viewer_id, at_ms, detail) VALUES {} \
             ON CONFLICT (id) DO NOTHING RETURNING seq, id",
            placeholders(chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for f in chunk {
            query = query
                .bind(f.id.clone())
                .bind(f.kind.as_str())
                .bind(f.maker.clone())
                .bind(f.drop_id.clone())
                .bind(f.viewer_id.clone())
                .bind(ms(f.at_ms))
                .bind(f.detail.to_string());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let id: String = row.try_get("id")?;
            // Ids are unique within a batch's rows only if the batch is: take the first.
            if let Some(fact) = chunk.iter().find(|f| f.id == id) {
                new.push((row.try_get::<i64, _>("seq")?, fact));
            }
        }
    }
    crate::consequences::follow(tx, &new, origin).await?;
    Ok(new.len() as u64)
}

impl Ledger {
    /// Records `facts` in one transaction; ids already recorded are skipped. Returns how
    /// many were new.
    pub async fn record(&self, facts: &[Fact]) -> Result<u64, FunnelError> {
        if facts.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write.begin().await?;
        let new = insert(&mut tx, facts).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Records an imported history in one transaction — all of it or, on an error, none:
    /// ids already recorded are skipped, and the facts build the KPI rollups but announce
    /// nothing (no webhooks, coupons or nurture for the past). Returns how many were new.
    pub async fn import(&self, facts: &[Fact]) -> Result<u64, FunnelError> {
        let mut tx = self.write.begin().await?;
        let new = insert_as(&mut tx, facts, Origin::History).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Facts in the order recorded, narrowed by `filter`.
    pub async fn facts(&self, filter: &FactFilter) -> Result<Vec<StoredFact>, FunnelError> {
        let mut sql = format!("SELECT {COLUMNS} FROM facts WHERE seq > $1");
        let mut n = 1;
        let mut clause = |sql: &mut String, column: &str| {
            n += 1;
            sql.push_str(&format!(" AND {column} = ${n}"));
        };
        if filter.drop_id.is_some() {
            clause(&mut sql, "drop_id");
        }
        if filter.viewer_id.is_some() {
            clause(&mut sql, "viewer_id");
        }
        if filter.kind.is_some() {
            clause(&mut sql, "kind");
        }
        if filter.maker.is_some() {
            clause(&mut sql, "maker");
        }
        let limit = filter.limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
        sql.push_str(&format!(" ORDER BY seq LIMIT {limit}"));
        let mut query = sqlx::query(&sql).bind(filter.after.unwrap_or(0));
        if let Some(d) = &filter.drop_id {
            query = query.bind(d.clone());
        }
        if let Some(v) = &filter.viewer_id {
            query = query.bind(v.clone());
        }
        if let Some(k) = filter.kind {
            query = query.bind(k.as_str());
        }
        if let Some(m) = &filter.maker {
            query = query.bind(m.clone());
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter().map(read_fact).collect()
    }

    /// How many facts of `kind` a drop has.
    pub async fn count(&self, drop_id: &str, kind: FactKind) -> Result<u64, FunnelError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM facts WHERE drop_id = $1 AND kind = $2")
                .bind(drop_id.to_owned())
                .bind(kind.as_str())
                .fetch_one(&self.read)
                .await?
                .try_get("n")?;
        Ok(unms(n))
    }

    /// Remembers that a drop's facts are complete (closed, nothing held): reconciliation
    /// skips it from now on.
    pub async fn mark_reconciled(&self, drop_id: &str, at_ms: u64) -> Result<(), FunnelError> {
        sqlx::query(
            "INSERT INTO reconciled (drop_id, at_ms) VALUES ($1, $2) ON CONFLICT (drop_id) DO NOTHING",
        )
        .bind(drop_id.to_owned())
        .bind(ms(at_ms))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The drops whose facts are complete.
    pub async fn reconciled(&self) -> Result<Vec<String>, FunnelError> {
        let rows = sqlx::query("SELECT drop_id FROM reconciled")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| r.try_get("drop_id").map_err(FunnelError::from))
            .collect()
    }
}
