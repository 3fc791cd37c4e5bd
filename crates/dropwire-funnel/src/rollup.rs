//! The KPI rollups (`kpi_drops`, `kpi_viewers`, `kpi_claims`, `kpi_purchases`), kept in the
//! transaction of each batch of new facts, so they are exactly what the facts say — a fact
//! recorded twice changes nothing, an imported history builds them too. `kpi.rs` reads them.
//!
//! A batch is folded first (one row per key, the earliest time of each step), then written
//! with multi-row upserts, so a million imported facts cost thousands of statements, not
//! millions.

use std::collections::{BTreeMap, BTreeSet};

use dropwire_core::{Fact, FactKind};
use sqlx::{Any, Row, Transaction};

use crate::FunnelError;
use crate::db::{ms, placeholders};

/// Rows per statement.
const ROWS: usize = 100;

#[derive(Debug, Default, Clone)]
struct DropRow {
    maker: String,
    /// Set by `drop.scheduled`: kind, recipe, title, time.
    scheduled: Option<(String, Option<String>, Option<String>, i64)>,
    live_ms: Option<i64>,
    closed: Option<(i64, Option<i64>)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ViewerRow {
    attended: Option<i64>,
    waitlisted: Option<i64>,
    claimed: Option<i64>,
    bought: Option<i64>,
}

#[derive(Debug, Clone)]
struct ClaimRow {
    drop_id: String,
    viewer_id: String,
    granted: Option<i64>,
    redeemed: Option<(i64, i64)>,
}

fn earliest(slot: &mut Option<i64>, at: i64) {
    if slot.is_none_or(|t| at < t) {
        *slot = Some(at);
    }
}

/// `column = the earliest of the row's and the new value` (a NULL is no value).
fn keep_earliest(table: &str, column: &str) -> String {
    format!(
        "{column} = CASE WHEN excluded.{column} IS NULL THEN {table}.{column} \
         WHEN {table}.{column} IS NULL OR excluded.{column} < {table}.{column} THEN excluded.{column} \
         ELSE {table}.{column} END"
    )
}

pub(crate) async fn apply(
    tx: &mut Transaction<'static, Any>,
    facts: &[&Fact],
) -> Result<(), FunnelError> {
    let mut drops: BTreeMap<String, DropRow> = BTreeMap::new();
    let mut viewers: BTreeMap<(String, String), (String, ViewerRow)> = BTreeMap::new();
    let mut claims: BTreeMap<String, ClaimRow> = BTreeMap::new();
    let mut purchases = Vec::new();
    for fact in facts {
        let Some(drop_id) = &fact.drop_id else {
            continue;
        };
        let d = &fact.detail;
        let at = ms(fact.at_ms);
        let row = drops.entry(drop_id.clone()).or_insert_with(|| DropRow {
            maker: fact.maker.clone(),
            ..DropRow::default()
        });
        match fact.kind {
            FactKind::DropScheduled => {
                row.scheduled = Some((
                    d["kind"].as_str().unwrap_or("drop").to_owned(),
                    d["recipe"].as_str().map(str::to_owned),
                    d["title"].as_str().map(str::to_owned),
                    at,
                ));
            }
            FactKind::DropLive => row.live_ms = Some(at),
            FactKind::DropClosed => row.closed = Some((at, d["peak_viewers"].as_i64())),
            _ => {}
        }
        let Some(viewer) = &fact.viewer_id else {
            continue;
        };
        let step = match fact.kind {
            FactKind::ViewerAttended => Some(0),
            FactKind::WaitlistJoined => Some(1),
            FactKind::ClaimGranted => Some(2),
            FactKind::ClaimRedeemed => Some(3),
            _ => None,
        };
        if let Some(step) = step {
            let (_, v) = viewers
                .entry((drop_id.clone(), viewer.clone()))
                .or_insert_with(|| (fact.maker.clone(), ViewerRow::default()));
            let slot = match step {
                0 => &mut v.attended,
                1 => &mut v.waitlisted,
                2 => &mut v.claimed,
                _ => &mut v.bought,
            };
            earliest(slot, at);
        }
        let amount = d["amount_cents"].as_i64().unwrap_or(0);
        match (fact.kind, d["code"].as_str()) {
            (FactKind::ClaimGranted | FactKind::ClaimRedeemed, Some(code)) => {
                let c = claims.entry(code.to_owned()).or_insert_with(|| ClaimRow {
                    drop_id: drop_id.clone(),
                    viewer_id: viewer.clone(),
                    granted: None,
                    redeemed: None,
                });
                if fact.kind == FactKind::ClaimGranted {
                    c.granted = Some(at);
                } else {
                    c.redeemed = Some((at, amount));
                    purchases.push((*fact, viewer.clone(), drop_id.clone(), "claim", amount));
                }
            }
            (FactKind::CouponRedeemed, _) => {
                purchases.push((*fact, viewer.clone(), drop_id.clone(), "coupon", amount));
            }
            _ => {}
        }
    }
    write_drops(tx, &drops).await?;
    write_viewers(tx, &viewers).await?;
    write_claims(tx, &claims).await?;
    // Re-engagement: whose earlier attendance may have changed — viewers attending now,
    // and every viewer of a drop whose start (live, else scheduled) was just learnt —
    // each recomputed once.
    let mut again: BTreeSet<String> = viewers
        .iter()
        .filter(|(_, (_, v))| v.attended.is_some())
        .map(|((_, viewer), _)| viewer.clone())
        .collect();
    for (drop_id, row) in &drops {
        if row.scheduled.is_some() || row.live_ms.is_some() {
            let rows = sqlx::query(
                "SELECT viewer_id FROM kpi_viewers WHERE drop_id = $1 AND attended_ms IS NOT NULL",
            )
            .bind(drop_id.clone())
            .fetch_all(&mut **tx)
            .await?;
            for r in rows {
                again.insert(r.try_get("viewer_id")?);
            }
        }
    }
    let again: Vec<String> = again.into_iter().collect();
    for chunk in again.chunks(ROWS) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = came_back(&format!("o.viewer_id IN ({list})"));
        let mut q = sqlx::query(&sql);
        for v in chunk {
            q = q.bind(v.clone());
        }
        q.execute(&mut **tx).await?;
    }
    for chunk in purchases.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO kpi_purchases (id, maker, viewer_id, drop_id, source, at_ms, amount_cents) VALUES {} \
             ON CONFLICT (id) DO NOTHING",
            placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for (fact, viewer, drop_id, source, amount) in chunk {
            q = q
                .bind(fact.id.clone())
                .bind(fact.maker.clone())
                .bind(viewer.clone())
                .bind(drop_id.clone())
                .bind(*source)
                .bind(ms(fact.at_ms))
                .bind(*amount);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Sets `came_back` on every drop row of the viewers `which` selects (over `o`): 1 where the
/// viewer attended the drop and its first attended drop started earlier.
fn came_back(which: &str) -> String {
    format!(
        "UPDATE kpi_viewers SET came_back = CASE WHEN kpi_viewers.attended_ms IS NOT NULL AND f.first_ms < s.start_ms \
         THEN 1 ELSE 0 END \
         FROM (SELECT o.viewer_id, MIN(COALESCE(d.live_ms, d.scheduled_ms, 0)) AS first_ms \
               FROM kpi_viewers o JOIN kpi_drops d ON d.drop_id = o.drop_id \
               WHERE o.attended_ms IS NOT NULL AND {which} GROUP BY o.viewer_id) AS f, \
              (SELECT drop_id, COALESCE(live_ms, scheduled_ms, 0) AS start_ms FROM kpi_drops) AS s \
         WHERE kpi_viewers.viewer_id = f.viewer_id AND s.drop_id = kpi_viewers.drop_id"
    )
}

async fn write_drops(
    tx: &mut Transaction<'static, Any>,
    drops: &BTreeMap<String, DropRow>,
) -> Result<(), FunnelError> {
    let rows: Vec<(&String, &DropRow)> = drops.iter().collect();
    for chunk in rows.chunks(ROWS) {
        // Every drop named gets a row; the facts of the batch fill in what they know.
        let sql = format!(
            "INSERT INTO kpi_drops (drop_id, maker) VALUES {} ON CONFLICT (drop_id) DO NOTHING",
            placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (id, row) in chunk {
            q = q.bind((*id).clone()).bind(row.maker.clone());
        }
        q.execute(&mut **tx).await?;
    }
    for (id, row) in drops {
        if let Some((kind, recipe, title, at)) = &row.scheduled {
            sqlx::query("UPDATE kpi_drops SET kind = $1, recipe = $2, title = $3, scheduled_ms = $4 WHERE drop_id = $5")
                .bind(kind.clone())
                .bind(recipe.clone())
                .bind(title.clone())
                .bind(*at)
                .bind(id.clone())
                .execute(&mut **tx)
                .await?;
        }
        if let Some(at) = row.live_ms {
            sqlx::query("UPDATE kpi_drops SET live_ms = $1 WHERE drop_id = $2")
                .bind(at)
                .bind(id.clone())
                .execute(&mut **tx)
                .await?;
        }
        if let Some((at, peak)) = row.closed {
            sqlx::query(
                "UPDATE kpi_drops SET closed_ms = $1, peak_viewers = $2 WHERE drop_id = $3",
            )
            .bind(at)
            .bind(peak)
            .bind(id.clone())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn write_viewers(
    tx: &mut Transaction<'static, Any>,
    viewers: &BTreeMap<(String, String), (String, ViewerRow)>,
) -> Result<(), FunnelError> {
    let rows: Vec<_> = viewers.iter().collect();
    let set: Vec<String> = ["attended_ms", "waitlisted_ms", "claimed_ms", "bought_ms"]
        .iter()
        .map(|c| keep_earliest("kpi_viewers", c))
        .collect();
    for chunk in rows.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO kpi_viewers (drop_id, viewer_id, maker, attended_ms, waitlisted_ms, claimed_ms, bought_ms) \
             VALUES {} ON CONFLICT (drop_id, viewer_id) DO UPDATE SET {}",
            placeholders(chunk.len(), 7),
            set.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for ((drop_id, viewer), (maker, v)) in chunk {
            q = q
                .bind(drop_id.clone())
                .bind(viewer.clone())
                .bind(maker.clone())
                .bind(v.attended)
                .bind(v.waitlisted)
                .bind(v.claimed)
                .bind(v.bought);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn write_claims(
    tx: &mut Transaction<'static, Any>,
    claims: &BTreeMap<String, ClaimRow>,
) -> Result<(), FunnelError> {
    let rows: Vec<_> = claims.iter().collect();
    for chunk in rows.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO kpi_claims (code, drop_id, viewer_id, granted_ms, redeemed_ms, amount_cents) VALUES {} \
             ON CONFLICT (code) DO UPDATE SET \
             granted_ms = COALESCE(excluded.granted_ms, kpi_claims.granted_ms), \
             redeemed_ms = COALESCE(excluded.redeemed_ms, kpi_claims.redeemed_ms), \
             amount_cents = COALESCE(excluded.amount_cents, kpi_claims.amount_cents)",
            placeholders(chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for (code, c) in chunk {
            q = q
                .bind((*code).clone())
                .bind(c.drop_id.clone())
                .bind(c.viewer_id.clone())
                .bind(c.granted)
                .bind(c.redeemed.map(|r| r.0))
                .bind(c.redeemed.map(|r| r.1));
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
