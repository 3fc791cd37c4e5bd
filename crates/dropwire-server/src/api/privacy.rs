//! A viewer's data (export, erasure), and the ledger's facts.

use axum::Json;
use axum::extract::{Path, Query, State};
use dropwire_core::{Claim, FactKind};
use dropwire_funnel::{FactFilter, StoredFact, ViewerExport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::claims::ClaimView;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

const MAX_VIEWER_ID: usize = 128;

fn viewer_id(raw: &str) -> Result<&str, AppError> {
    if raw.is_empty() || raw.len() > MAX_VIEWER_ID {
        return Err(AppError::bad_request(
            "bad_request",
            format!("a viewer id is 1-{MAX_VIEWER_ID} characters"),
            None,
        ));
    }
    Ok(raw)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    #[serde(flatten)]
    ledger: ViewerExport,
    /// The viewer's claims as the live store holds them, with their codes.
    claims: Vec<ClaimView>,
}

/// The drops a viewer's facts name (where its claims may be).
fn drops_of(export: &ViewerExport) -> Vec<String> {
    let mut drops: Vec<String> = export
        .facts
        .iter()
        .filter_map(|f| f.fact.drop_id.clone())
        .collect();
    drops.sort();
    drops.dedup();
    drops
}

/// `GET /api/v1/viewers/{viewer_id}/export` (admin)
#[utoipa::path(
    get,
    path = "/api/v1/viewers/{viewer_id}/export",
    tag = "privacy",
    operation_id = "export_viewer",
    summary = "Everything kept of a viewer: facts, waitlist entries, coupons, claims",
    params(("viewer_id" = String, Path, description = "The viewer's id (in its viewer token, or a host JWT's `sub`)", min_length = 1, max_length = 128)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The viewer's data", body = Export),
        (status = 400, description = "`bad_request`: a viewer id is 1-128 characters", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the store or the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn export(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Export>, AppError> {
    caller.operator_only()?;
    let id = viewer_id(&raw)?;
    let ledger = state.ledger()?.export_viewer(id).await?;
    let mut claims: Vec<Claim> = Vec::new();
    for drop in drops_of(&ledger) {
        if let Ok(drop) = dropwire_core::DropId::parse(&drop)
            && state.store.drop_record(&drop).await?.is_some()
        {
            let all = state.store.claims(&drop).await?;
            claims.extend(all.into_iter().filter(|c| c.viewer_id == id));
        }
    }
    Ok(Json(Export {
        ledger,
        claims: claims.into_iter().map(ClaimView::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedCounts {
    facts: u64,
    waitlist: u64,
    claims: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedAnswer {
    viewer_id: String,
    erased: ErasedCounts,
}

/// `DELETE /api/v1/viewers/{viewer_id}` (admin): erasure (see docs/privacy.md).
#[utoipa::path(
    delete,
    path = "/api/v1/viewers/{viewer_id}",
    tag = "privacy",
    operation_id = "erase_viewer",
    summary = "Erase a viewer (see docs/privacy.md)",
    params(("viewer_id" = String, Path, description = "The viewer's id (in its viewer token, or a host JWT's `sub`)", min_length = 1, max_length = 128)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What was erased", body = ErasedAnswer),
        (status = 400, description = "`bad_request`: a viewer id is 1-128 characters", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the store or the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn erase(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<ErasedAnswer>, AppError> {
    caller.operator_only()?;
    let id = viewer_id(&raw)?;
    let ledger = state.ledger()?;
    let tombstone = format!("erased-{}", ulid::Ulid::new());
    // Facts still queued for this viewer land first, so none arrives after the erasure.
    if let Some(funnel) = &state.funnel {
        funnel.feed.flush(std::time::Duration::from_secs(5)).await;
    }
    // The store first: a reconciliation after the ledger's erasure then finds the claims
    // under the tombstone (and their facts, by their ids, already there).
    let claims = state.store.erase_viewer(id, &tombstone).await?;
    let erased = ledger
        .erase_viewer(id, &tombstone, state.clock.now_ms())
        .await?;
    tracing::info!(%tombstone, claims, facts = erased.facts, "viewer erased");
    Ok(Json(ErasedAnswer {
        viewer_id: id.to_owned(),
        erased: ErasedCounts {
            facts: erased.facts,
            waitlist: erased.waitlist,
            claims,
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FactQuery {
    /// Only facts after this `seq` (the previous page's `next`).
    after: Option<i64>,
    /// Only this drop's facts.
    drop: Option<String>,
    /// Only this viewer's facts.
    viewer: Option<String>,
    /// Only facts of this kind.
    #[param(value_type = Option<FactKind>, inline)]
    kind: Option<String>,
    /// At most this many (1000 when absent or larger).
    #[param(value_type = Option<u64>, maximum = 4_294_967_295_u64)]
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FactPage {
    facts: Vec<StoredFact>,
    /// Pass as `after` for the next page (absent when this page is the last so far).
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

/// `GET /api/v1/ledger/facts` (admin): the ledger's facts in order, filtered and paged.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/facts",
    tag = "ledger",
    operation_id = "list_facts",
    summary = "The ledger's facts in order, filtered and paged",
    params(FactQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of facts", body = FactPage),
        (status = 400, description = "`bad_request`: a parameter of the wrong type, an unknown one, or an unknown `kind`", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn facts(
    caller: Caller,
    State(state): State<AppState>,
    query: Result<Query<FactQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FactPage>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    let kind = match q.kind.as_deref() {
        Some(k) => Some(FactKind::parse(k).ok_or_else(|| {
            AppError::bad_request(
                "bad_request",
                format!("unknown kind {k:?}"),
                Some("kind".into()),
            )
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(dropwire_funnel::MAX_PAGE);
    let filter = FactFilter {
        after: q.after,
        drop_id: q.drop,
        viewer_id: q.viewer,
        kind,
        // The operator (without X-Dropwire-Maker) reads every maker's facts.
        maker: (!caller.sees_all()).then(|| caller.maker().to_owned()),
        limit: Some(limit),
    };
    let facts = state.ledger()?.facts(&filter).await?;
    let full = facts.len() as u32 >= limit.min(dropwire_funnel::MAX_PAGE);
    let next = full.then(|| facts.last().map(|f| f.seq)).flatten();
    Ok(Json(FactPage { facts, next }))
}
