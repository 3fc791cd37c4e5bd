//! The funnel KPIs (definitions in docs/metrics.md): one drop, a summary grouped by kind,
//! recipe or month, and drops side by side; each as JSON or, with `Accept: text/csv`, CSV.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use dropwire_funnel::{CurvePoint, DropKpis, Ltv};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{csv, wants_csv};
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

/// The CSV columns of a row of KPIs, and how to read each from its JSON.
const COLUMNS: [&str; 24] = [
    "drop_id",
    "title",
    "kind",
    "recipe",
    "starts_ms",
    "unique_viewers",
    "peak_viewers",
    "waitlist",
    "waitlist_claimers",
    "intent_to_buy",
    "claimers",
    "claim_rate",
    "claims",
    "redeemed",
    "redeemed_48h",
    "conversion_48h",
    "coupon_uses",
    "re_engaged",
    "re_engagement",
    "revenue_cents",
    "buyers",
    "repeat_buyers_90d",
    "repeat_90d",
    "repeat_90d_complete",
];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(k: &impl Serialize, first: Option<(&str, &str)>) -> Vec<String> {
    let v = serde_json::to_value(k).unwrap_or(Value::Null);
    let mut out: Vec<String> = first
        .map(|(_, key)| vec![key.to_owned()])
        .unwrap_or_default();
    out.extend(COLUMNS.iter().map(|c| cell(&v[*c])));
    out
}

async fn all(
    state: &AppState,
    caller: &Caller,
    only: Option<&str>,
) -> Result<Vec<DropKpis>, AppError> {
    Ok(state
        .ledger()?
        .drop_kpis(
            &maker_of(state, caller, only).await?,
            state.clock.now_ms(),
            only,
        )
        .await?)
}

/// Whose KPIs a request reads: the caller's maker's, but the operator (which sees every
/// drop) asking for one drop reads that drop's maker's.
async fn maker_of(
    state: &AppState,
    caller: &Caller,
    only: Option<&str>,
) -> Result<String, AppError> {
    if let (true, Some(id)) = (caller.sees_all(), only)
        && let Ok(id) = dropwire_core::DropId::parse(id)
        && let Some(record) = state.store.drop_record(&id).await?
    {
        return Ok(record.maker);
    }
    Ok(caller.maker().to_owned())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KpiList {
    drops: Vec<DropKpis>,
}

const KPI_ERRORS: &str =
    "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached";

/// `GET /api/v1/analytics/drops`: every drop the ledger knows, with its KPIs.
#[utoipa::path(
    get,
    path = "/api/v1/analytics/drops",
    tag = "analytics",
    operation_id = "analytics_drops",
    summary = "Every drop the ledger knows (hub drops and imported ones) with its KPIs, in the order they started",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The KPIs of every drop; with `Accept: text/csv`, one row per drop",
            content((KpiList = "application/json"), (String = "text/csv"))),
        (status = 503, description = KPI_ERRORS, body = ErrorBody),
    )
)]
pub async fn drops(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let drops = all(&state, &caller, None).await?;
    if wants_csv(&headers) {
        return Ok(csv::response(
            "analytics-drops.csv",
            &COLUMNS,
            drops.iter().map(|k| row(k, None)),
        ));
    }
    Ok(Json(KpiList { drops }).into_response())
}

/// One drop's funnel, step by step, for the chart.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelSteps {
    viewers: u64,
    waitlist: u64,
    claims: u64,
    redemptions: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DropAnalytics {
    #[serde(flatten)]
    kpis: DropKpis,
    funnel: FunnelSteps,
    repeat_curve: Vec<CurvePoint>,
}

/// `GET /api/v1/analytics/drops/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/analytics/drops/{id}",
    tag = "analytics",
    operation_id = "analytics_drop",
    summary = "One drop's KPIs, its funnel step by step and its 90-day repeat curve",
    params(("id" = String, Path, description = "The drop's id (in the ledger: a hub drop or an imported one)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop's KPIs; with `Accept: text/csv`, one row",
            content((DropAnalytics = "application/json"), (String = "text/csv"))),
        (status = 404, description = "`not_found`: no facts of that drop in the ledger", body = ErrorBody),
        (status = 503, description = KPI_ERRORS, body = ErrorBody),
    )
)]
pub async fn drop(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let kpis = all(&state, &caller, Some(&id))
        .await?
        .into_iter()
        .find(|k| k.drop_id == id)
        .ok_or_else(|| AppError::NotFound(format!("no drop {id:?} in the ledger")))?;
    if wants_csv(&headers) {
        return Ok(csv::response(
            &format!("analytics-{id}.csv"),
            &COLUMNS,
            [row(&kpis, None)],
        ));
    }
    let maker = maker_of(&state, &caller, Some(&id)).await?;
    let repeat_curve = state.ledger()?.repeat_curve(&maker, &id).await?;
    let funnel = FunnelSteps {
        viewers: kpis.unique_viewers,
        waitlist: kpis.waitlist,
        claims: kpis.claims,
        redemptions: kpis.redeemed,
    };
    Ok(Json(DropAnalytics {
        kpis,
        funnel,
        repeat_curve,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Drops that started at or after this time: Unix ms, RFC 3339, or `YYYY-MM-DD`
    /// (midnight UTC), after 1970.
    #[param(example = "2026-12-01")]
    from: Option<String>,
    /// Drops that started before this time (as `from`).
    #[param(example = "2027-01-01")]
    to: Option<String>,
    /// How to group the drops (default `kind`).
    #[param(value_type = Option<GroupBy>, inline)]
    by: Option<String>,
}

/// How the summary groups drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum GroupBy {
    /// By event type (`drop`, `workshop`, `demo`).
    Kind,
    /// By the recipe the drop was made from (`(none)` without one).
    Recipe,
    /// By the month it started (`YYYY-MM`, UTC).
    Month,
}

impl GroupBy {
    fn parse(s: &str) -> Option<GroupBy> {
        match s {
            "kind" => Some(GroupBy::Kind),
            "recipe" => Some(GroupBy::Recipe),
            "month" => Some(GroupBy::Month),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Kind => "kind",
            GroupBy::Recipe => "recipe",
            GroupBy::Month => "month",
        }
    }
}

/// A time as the query gives it: Unix ms, RFC 3339, or a date (`2026-12-01`, midnight UTC).
fn moment(raw: &str, field: &str) -> Result<u64, AppError> {
    let bad = || {
        AppError::bad_request(
            "bad_request",
            format!("{field}={raw:?}: give Unix ms, RFC 3339 or YYYY-MM-DD"),
            Some(field.to_owned()),
        )
    };
    if let Ok(ms) = raw.parse::<u64>() {
        return Ok(ms);
    }
    let full = if raw.len() == 10 {
        format!("{raw}T00:00:00Z")
    } else {
        raw.to_owned()
    };
    dropwire_core::StartsAt::parse(&full)
        .map(|t| t.ms())
        .map_err(|_| bad())
}

/// `YYYY-MM` of a Unix ms time (UTC).
fn month(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    key: String,
    drops: u64,
    #[serde(flatten)]
    kpis: DropKpis,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    by: String,
    groups: Vec<Group>,
    /// LTV by event type over every buyer of the maker (not limited by from/to).
    ltv_by_kind: Vec<Ltv>,
}

/// `GET /api/v1/analytics/summary?from=&to=&by=kind|recipe|month`
#[utoipa::path(
    get,
    path = "/api/v1/analytics/summary",
    tag = "analytics",
    operation_id = "analytics_summary",
    summary = "Pooled KPIs of the drops grouped by kind, recipe or month, and LTV by event type",
    params(SummaryQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The groups; with `Accept: text/csv`, one row per group",
            content((Summary = "application/json"), (String = "text/csv"))),
        (status = 400, description = "`bad_request`: `from` or `to` is not a time, `by` is not kind, recipe or month, or an unknown parameter", body = ErrorBody),
        (status = 503, description = KPI_ERRORS, body = ErrorBody),
    )
)]
pub async fn summary(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    let from = q.from.as_deref().map(|f| moment(f, "from")).transpose()?;
    let to = q.to.as_deref().map(|t| moment(t, "to")).transpose()?;
    let by = match q.by.as_deref() {
        None => GroupBy::Kind,
        Some(by) => GroupBy::parse(by).ok_or_else(|| {
            AppError::bad_request(
                "bad_request",
                "by is kind, recipe or month",
                Some("by".into()),
            )
        })?,
    };
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for k in all(&state, &caller, None).await? {
        let starts = k.starts_ms.unwrap_or(0);
        if from.is_some_and(|f| starts < f) || to.is_some_and(|t| starts >= t) {
            continue;
        }
        let key = match by {
            GroupBy::Kind => k.kind.clone(),
            GroupBy::Recipe => k.recipe.clone().unwrap_or_else(|| "(none)".into()),
            GroupBy::Month => month(starts),
        };
        let group = groups.entry(key.clone()).or_insert_with(|| {
            // The group's pooled figures: sums of the counts, ratios of the sums.
            let mut kpis = DropKpis::new(String::new());
            kpis.kind = k.kind.clone();
            Group {
                key,
                drops: 0,
                kpis,
            }
        });
        group.drops += 1;
        group.kpis.add(&k);
    }
    let groups: Vec<Group> = groups.into_values().collect();
    if wants_csv(&headers) {
        let mut header = vec!["group", "drops"];
        header.extend(COLUMNS.iter().skip(5));
        let rows = groups.iter().map(|g| {
            let v = serde_json::to_value(&g.kpis).unwrap_or(Value::Null);
            let mut r = vec![g.key.clone(), g.drops.to_string()];
            r.extend(COLUMNS.iter().skip(5).map(|c| cell(&v[*c])));
            r
        });
        return Ok(csv::response(
            &format!("analytics-by-{}.csv", by.as_str()),
            &header,
            rows,
        ));
    }
    let ltv_by_kind = state
        .ledger()?
        .ltv_by_kind(caller.maker(), state.clock.now_ms())
        .await?;
    Ok(Json(Summary {
        from_ms: from,
        to_ms: to,
        by: by.as_str().to_owned(),
        groups,
        ltv_by_kind,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompareQuery {
    /// 1-20 drop ids, comma-separated (spaces around them and empty ones are ignored); the
    /// first is the base of the differences.
    #[param(
        example = "mugs-11,mugs-12",
        pattern = r"^(\s*,)*[^,]*[^,\s][^,]*(,\s*)*(,[^,]*[^,\s][^,]*(,\s*)*){0,19}$"
    )]
    drops: String,
}

/// A drop's ratios (and revenue) minus those of the first drop compared; `null` where
/// either is undefined.
#[derive(Debug, Serialize, ToSchema)]
pub struct Difference {
    drop_id: String,
    /// The first drop compared.
    versus: String,
    intent_to_buy: Option<f64>,
    claim_rate: Option<f64>,
    conversion_48h: Option<f64>,
    re_engagement: Option<f64>,
    repeat_90d: Option<f64>,
    revenue_cents: Option<f64>,
}

impl Difference {
    fn between(k: &DropKpis, base: &DropKpis) -> Self {
        let minus = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        Difference {
            drop_id: k.drop_id.clone(),
            versus: base.drop_id.clone(),
            intent_to_buy: minus(k.intent_to_buy, base.intent_to_buy),
            claim_rate: minus(k.claim_rate, base.claim_rate),
            conversion_48h: minus(k.conversion_48h, base.conversion_48h),
            re_engagement: minus(k.re_engagement, base.re_engagement),
            repeat_90d: minus(k.repeat_90d, base.repeat_90d),
            revenue_cents: Some(k.revenue_cents as f64 - base.revenue_cents as f64),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Compared {
    drops: Vec<DropKpis>,
    /// For each drop after the first: each ratio (and the revenue) minus the first drop's.
    differences: Vec<Difference>,
}

/// `GET /api/v1/analytics/compare?drops=a,b,c`
#[utoipa::path(
    get,
    path = "/api/v1/analytics/compare",
    tag = "analytics",
    operation_id = "analytics_compare",
    summary = "Drops side by side, with their differences from the first",
    params(CompareQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drops' KPIs; with `Accept: text/csv`, one row per drop",
            content((Compared = "application/json"), (String = "text/csv"))),
        (status = 400, description = "`bad_request`: `drops` missing, or naming no drop or more than 20, or an unknown parameter", body = ErrorBody),
        (status = 404, description = "`not_found`: a drop with no facts in the ledger (the message names it)", body = ErrorBody),
        (status = 503, description = KPI_ERRORS, body = ErrorBody),
    )
)]
pub async fn compare(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<CompareQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    let ids: Vec<&str> = q
        .drops
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !(1..=20).contains(&ids.len()) {
        return Err(AppError::bad_request(
            "bad_request",
            "name 1-20 drops: drops=a,b,c",
            Some("drops".into()),
        ));
    }
    let mut drops = Vec::new();
    for id in &ids {
        let k = all(&state, &caller, Some(id))
            .await?
            .into_iter()
            .find(|k| k.drop_id == *id)
            .ok_or_else(|| AppError::NotFound(format!("no drop {id:?} in the ledger")))?;
        drops.push(k);
    }
    if wants_csv(&headers) {
        return Ok(csv::response(
            "analytics-compare.csv",
            &COLUMNS,
            drops.iter().map(|k| row(k, None)),
        ));
    }
    let differences = drops[1..]
        .iter()
        .map(|k| Difference::between(k, &drops[0]))
        .collect();
    Ok(Json(Compared { drops, differences }).into_response())
}
