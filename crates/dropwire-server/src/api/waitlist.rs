//! The waitlist (pre-event): a viewer joins in one click with its intent; the maker reads
//! the entries and their segments (JSON, or CSV with `Accept: text/csv`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dropwire_core::DropState;
use dropwire_core::waitlist::WaitlistJoin;
use dropwire_funnel::WaitlistEntry;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiJson, wants_csv};
use crate::app::AppState;
use crate::auth::AuthViewer;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

/// What a viewer is told about early access when it joins.
#[derive(Debug, Serialize, ToSchema)]
pub struct EarlyAccess {
    /// Seconds after each reveal during which the waitlist alone may claim (0: none).
    window_s: u32,
    /// Whether this viewer may claim early (every waitlisted viewer may, when `window_s` > 0).
    eligible: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JoinAnswer {
    position: u64,
    early_access: EarlyAccess,
    entry: WaitlistEntry,
}

/// `POST /api/v1/drops/{id}/waitlist`: join (201) or update (200).
#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/waitlist",
    tag = "waitlist",
    operation_id = "join_waitlist",
    summary = "Join a drop's waitlist (201), or update the entry (200; the place in line is kept)",
    description = "Joining admits the viewer to the drop's early-access segment on every node.",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = WaitlistJoin,
    security(("viewer_token" = [])),
    responses(
        (status = 200, description = "The entry, updated", body = JoinAnswer),
        (status = 201, description = "The entry, new", body = JoinAnswer),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 422, description = "`invalid`: the join breaks a rule (`field` names it: a size that is no variant, an unknown SKU, a contact without consent…); `drop_closed`: the drop is closed", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the store or the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn join(
    AuthViewer(viewer): AuthViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WaitlistJoin>,
) -> Result<(StatusCode, Json<JoinAnswer>), AppError> {
    let ledger = state.ledger()?;
    let hub = state.hub_by_path(&id).await?;
    let now = state.clock.now_ms();
    let (record, view) = hub.view_at(now);
    if view.state == DropState::Closed {
        return Err(AppError::DropClosed(hub.id.to_string()));
    }
    body.validate(&record.spec)?;
    let unique = ulid::Ulid::new().to_string();
    let joined = ledger
        .join_waitlist_by(
            &record.maker,
            hub.id.as_str(),
            &viewer.id,
            &viewer.handle,
            &body,
            &unique,
            now,
        )
        .await?;
    // The segment lives in the store, where every node's claims check it.
    state.store.admit(&hub.id, &viewer.id).await?;
    let window_s = record.spec.early_access_s;
    let status = if joined.created {
        tracing::info!(drop = %hub.id, position = joined.entry.position, "waitlist joined");
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(JoinAnswer {
            position: joined.entry.position,
            early_access: EarlyAccess {
                window_s,
                eligible: window_s > 0,
            },
            entry: joined.entry,
        }),
    ))
}

/// `GET /api/v1/drops/{id}/waitlist/me`: the caller's own entry (404 `not_on_waitlist`).
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}/waitlist/me",
    tag = "waitlist",
    operation_id = "my_waitlist_entry",
    summary = "The caller's own waitlist entry",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("viewer_token" = [])),
    responses(
        (status = 200, description = "The entry, as the join answers it", body = JoinAnswer),
        (status = 404, description = "`not_found`: no such drop; `not_on_waitlist`: the viewer has not joined", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn mine(
    AuthViewer(viewer): AuthViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JoinAnswer>, AppError> {
    let ledger = state.ledger()?;
    let hub = state.hub_by_path(&id).await?;
    let entry = ledger
        .waitlist_entry(hub.id.as_str(), &viewer.id)
        .await?
        .ok_or_else(|| AppError::NotOnWaitlist(format!("not on the waitlist of {}", hub.id)))?;
    let window_s = hub.record().spec.early_access_s;
    Ok(Json(JoinAnswer {
        position: entry.position,
        early_access: EarlyAccess {
            window_s,
            eligible: window_s > 0,
        },
        entry,
    }))
}

/// One segment: viewers who chose this size and this item (`null`: none named).
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
pub struct Segment {
    size: Option<String>,
    item: Option<String>,
    count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistView {
    drop_id: String,
    count: u64,
    /// Entries that consented to marketing.
    consented: u64,
    segments: Vec<Segment>,
    entries: Vec<WaitlistEntry>,
}

/// Counts per (size, item): a viewer naming two items counts in both.
fn segments(entries: &[WaitlistEntry]) -> Vec<Segment> {
    let mut counts: BTreeMap<(Option<String>, Option<String>), u64> = BTreeMap::new();
    for e in entries {
        let items: Vec<Option<String>> = if e.intent.items.is_empty() {
            vec![None]
        } else {
            e.intent.items.iter().cloned().map(Some).collect()
        };
        for item in items {
            *counts.entry((e.intent.size.clone(), item)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((size, item), count)| Segment { size, item, count })
        .collect()
}

/// `GET /api/v1/drops/{id}/waitlist` (admin): entries and segments; CSV on request.
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}/waitlist",
    tag = "waitlist",
    operation_id = "list_waitlist",
    summary = "A drop's waitlist: entries and segment counts (CSV with `Accept: text/csv`)",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The waitlist; with `Accept: text/csv`, one row per entry (`position,viewer_id,handle,size,items,note,marketing_consent,contact,joined_ms,updated_ms`)",
            content((WaitlistView = "application/json"), (String = "text/csv"))),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let ledger = state.ledger()?;
    let hub = caller.hub(&state, &id).await?;
    let entries = ledger.waitlist(hub.id.as_str()).await?;
    if wants_csv(&headers) {
        return Ok(csv(hub.id.as_str(), &entries));
    }
    Ok(Json(WaitlistView {
        drop_id: hub.id.to_string(),
        count: entries.len() as u64,
        consented: entries.iter().filter(|e| e.consent.marketing).count() as u64,
        segments: segments(&entries),
        entries,
    })
    .into_response())
}

fn csv(drop_id: &str, entries: &[WaitlistEntry]) -> Response {
    let rows = entries.iter().map(|e| {
        vec![
            e.position.to_string(),
            e.viewer_id.clone(),
            e.handle.clone(),
            e.intent.size.clone().unwrap_or_default(),
            e.intent.items.join(" "),
            e.intent.note.clone().unwrap_or_default(),
            e.consent.marketing.to_string(),
            e.contact.clone().unwrap_or_default(),
            e.joined_ms.to_string(),
            e.updated_ms.to_string(),
        ]
    });
    super::csv::response(
        &format!("waitlist-{drop_id}.csv"),
        &[
            "position",
            "viewer_id",
            "handle",
            "size",
            "items",
            "note",
            "marketing_consent",
            "contact",
            "joined_ms",
            "updated_ms",
        ],
        rows,
    )
}
