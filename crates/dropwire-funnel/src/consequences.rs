//! What a new fact sets off, written in the transaction that records it: a webhook message
//! per endpoint that wants its kind (the outbox), a follow-up coupon for a confirmation,
//! nurture timers for a redemption, the KPI rollups (`rollup`) and the passes a fact
//! completes (`passes`, also for an imported history). A fact recorded again
//! sets off nothing.

use dropwire_core::followup::NurtureStep;
use dropwire_core::{Fact, FactKind};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::FunnelError;
use crate::db::{ms, placeholders};
use crate::facts::Origin;

/// Outbox rows per INSERT statement.
const ROWS: usize = 100;

/// Whether an endpoint subscribed to `events` (a JSON list) wants `kind`.
pub(crate) fn wants(events: &[String], kind: FactKind) -> bool {
    events.iter().any(|e| e == "*" || e == kind.as_str())
}

pub(crate) async fn follow(
    tx: &mut Transaction<'static, Any>,
    new: &[(i64, &Fact)],
    origin: Origin,
) -> Result<(), FunnelError> {
    if new.is_empty() {
        return Ok(());
    }
    let facts: Vec<&Fact> = new.iter().map(|(_, f)| *f).collect();
    crate::rollup::apply(tx, &facts).await?;
    crate::passes::earn(tx, &facts).await?;
    if origin == Origin::History {
        return Ok(());
    }
    let mut makers: Vec<&str> = new.iter().map(|(_, f)| f.maker.as_str()).collect();
    makers.sort_unstable();
    makers.dedup();
    let mut endpoints: Vec<(String, String, Vec<String>)> = Vec::new();
    for maker in makers {
        let rows = sqlx::query(
            "SELECT id, events FROM endpoints WHERE maker = $1 AND disabled_ms IS NULL",
        )
        .bind(maker.to_owned())
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            let events: String = row.try_get("events")?;
            let events = serde_json::from_str(&events)
                .map_err(|e| FunnelError::corrupt("endpoint events", e))?;
            endpoints.push((maker.to_owned(), row.try_get("id")?, events));
        }
    }
    let mut messages = Vec::new();
    for (seq, fact) in new {
        let msg_id = format!("msg_{}", ulid::Ulid::new());
        for (maker, endpoint, events) in &endpoints {
            if *maker == fact.maker && wants(events, fact.kind) {
                messages.push((msg_id.clone(), endpoint.clone(), *seq, *fact));
            }
        }
        match fact.kind {
            FactKind::FollowupConfirmation => coupon(tx, fact).await?,
            FactKind::ClaimRedeemed => timers(tx, fact).await?,
            _ => {}
        }
    }
    for chunk in messages.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO outbox (msg_id, endpoint_id, fact_seq, event, state, attempts, next_ms, \
             lease_until_ms, created_ms) VALUES {} ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
            placeholders(chunk.len(), 9)
        );
        let mut query = sqlx::query(&sql);
        for (msg_id, endpoint, seq, fact) in chunk {
            query = query
                .bind(msg_id.clone())
                .bind(endpoint.clone())
                .bind(*seq)
                .bind(fact.kind.as_str())
                .bind("pending")
                .bind(0i64)
                .bind(ms(fact.at_ms))
                .bind(0i64)
                .bind(ms(fact.at_ms));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The follow-up coupon a confirmation carries.
async fn coupon(tx: &mut Transaction<'static, Any>, fact: &Fact) -> Result<(), FunnelError> {
    let c = &fact.detail["coupon"];
    let (Some(code), Some(percent), Some(expires)) = (
        c["code"].as_str(),
        c["percent_off"].as_i64(),
        c["expires_ms"].as_i64(),
    ) else {
        return Ok(()); // a follow-up without a coupon
    };
    sqlx::query(
        "INSERT INTO coupons (code, claim_code, maker, drop_id, viewer_id, percent_off, expires_ms, currency) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(code.to_owned())
    .bind(fact.detail["code"].as_str().unwrap_or_default().to_owned())
    .bind(fact.maker.clone())
    .bind(fact.drop_id.clone().unwrap_or_default())
    .bind(fact.viewer_id.clone().unwrap_or_default())
    .bind(percent)
    .bind(expires)
    .bind(fact.detail["currency"].as_str().unwrap_or("EUR").to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The nurture schedule that applies to a drop: its own, else its maker's.
pub(crate) async fn schedule_of(
    tx: &mut Transaction<'static, Any>,
    maker: &str,
    drop_id: &str,
) -> Result<Vec<NurtureStep>, FunnelError> {
    let own = sqlx::query("SELECT detail FROM facts WHERE id = $1")
        .bind(format!("{}:{drop_id}:", FactKind::DropScheduled))
        .fetch_optional(&mut **tx)
        .await?;
    let parse = |raw: &str, what: &str| -> Result<Value, FunnelError> {
        serde_json::from_str(raw).map_err(|e| FunnelError::corrupt(what.to_owned(), e))
    };
    if let Some(row) = own {
        let detail = parse(&row.try_get::<String, _>("detail")?, "drop.scheduled")?;
        if !detail["nurture"].is_null() {
            return serde_json::from_value(detail["nurture"].clone())
                .map_err(|e| FunnelError::corrupt(format!("nurture of {drop_id}"), e));
        }
    }
    let maker_schedule =
        sqlx::query("SELECT value FROM settings WHERE maker = $1 AND key = 'nurture'")
            .bind(maker.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
    match maker_schedule {
        Some(row) => {
            serde_json::from_value(parse(&row.try_get::<String, _>("value")?, "settings")?)
                .map_err(|e| FunnelError::corrupt(format!("nurture of {maker}"), e))
        }
        None => Ok(Vec::new()),
    }
}

/// A redemption's nurture timers, one per step of the schedule that applies; a buyer's
/// later redemptions in the same drop add none (`timers_once_per_buyer`).
async fn timers(tx: &mut Transaction<'static, Any>, fact: &Fact) -> Result<(), FunnelError> {
    let (Some(drop_id), Some(viewer), Some(code)) =
        (&fact.drop_id, &fact.viewer_id, fact.detail["code"].as_str())
    else {
        return Ok(());
    };
    let steps = schedule_of(tx, &fact.maker, drop_id).await?;
    for (i, due) in dropwire_core::followup::schedule(&steps, fact.at_ms) {
        let step = serde_json::to_string(&steps[i])
            .map_err(|e| FunnelError::corrupt("nurture step", e))?;
        sqlx::query(
            "INSERT INTO timers (id, maker, drop_id, viewer_id, step, due_ms, state, lease_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0) ON CONFLICT DO NOTHING",
        )
        .bind(format!("nurture:{drop_id}:{code}:{i}"))
        .bind(fact.maker.clone())
        .bind(drop_id.clone())
        .bind(viewer.clone())
        .bind(step)
        .bind(ms(due))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
