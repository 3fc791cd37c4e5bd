//! Drops and their timeline: create, list, get, start, pause, resume, close, fire.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dropwire_core::protocol::DropSnapshot;
use dropwire_core::{ControlAction, DropId, DropRecord, DropSpec, FireTarget, TimelineView};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::app::AppState;
use crate::auth::Admin;
use crate::error::AppError;
use crate::hub::DropHub;

/// `POST /api/v1/drops` → 201 with the drop.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<DropSpec>,
) -> Result<(StatusCode, Json<DropSnapshot>), AppError> {
    let hub = create_drop(&state, spec).await?;
    Ok((StatusCode::CREATED, Json(hub.admin_snapshot().await?)))
}

/// Validates `spec` and creates its drop (scheduled), with an id made from the title when
/// it names none: what `POST /api/v1/drops` does, for the API and `serve --demo` alike.
pub async fn create_drop(state: &AppState, spec: DropSpec) -> Result<Arc<DropHub>, AppError> {
    spec.validate()?;
    let id = match &spec.id {
        Some(id) => DropId::parse(id)?,
        None => DropId::from_title(&spec.title, &ulid::Ulid::new().to_string()[20..]),
    };
    let obs_key = B64.encode(dropwire_store::random_bytes::<18>()?);
    let record = DropRecord {
        id: id.clone(),
        spec: DropSpec {
            id: Some(id.to_string()),
            ..spec
        },
        obs_key,
        created_ms: state.clock.now_ms(),
        log: Vec::new(),
    };
    state.store.create_drop(record).await?;
    tracing::info!(drop = %id, "drop created");
    state.hub(&id).await
}

#[derive(Debug, Serialize)]
pub struct DropSummary {
    id: String,
    title: String,
    kind: dropwire_core::DropKind,
    state: dropwire_core::DropState,
    created_ms: u64,
    started_ms: Option<u64>,
    closed_ms: Option<u64>,
    obs_key: String,
}

#[derive(Debug, Serialize)]
pub struct DropList {
    drops: Vec<DropSummary>,
}

/// `GET /api/v1/drops`
pub async fn list(_: Admin, State(state): State<AppState>) -> Result<Json<DropList>, AppError> {
    let now = state.clock.now_ms();
    let drops = state
        .store
        .list_drops()
        .await?
        .into_iter()
        .map(|r| {
            let view = TimelineView::compute(&r.spec.script, &r.log, now);
            DropSummary {
                id: r.id.to_string(),
                title: r.spec.title,
                kind: r.spec.kind,
                state: view.state,
                created_ms: r.created_ms,
                started_ms: view.started_ms,
                closed_ms: view.closed_ms,
                obs_key: r.obs_key,
            }
        })
        .collect();
    Ok(Json(DropList { drops }))
}

/// `GET /api/v1/drops/{id}`
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    let hub = state.hub_by_path(&id).await?;
    Ok(Json(hub.admin_snapshot().await?))
}

async fn control(
    state: AppState,
    id: String,
    action: ControlAction,
) -> Result<Json<DropSnapshot>, AppError> {
    let hub = state.hub_by_path(&id).await?;
    control_drop(&hub, action).await?;
    Ok(Json(hub.admin_snapshot().await?))
}

/// Appends a control action (start, pause, resume, close, fire) to the drop's log: what
/// the control routes do, for the API and `serve --demo` alike.
pub async fn control_drop(hub: &DropHub, action: ControlAction) -> Result<(), AppError> {
    let name = action.name();
    hub.control(action).await?;
    tracing::info!(drop = %hub.id, action = name, "control");
    Ok(())
}

pub async fn start(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(state, id, ControlAction::Start).await
}

pub async fn pause(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(state, id, ControlAction::Pause).await
}

pub async fn resume(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(state, id, ControlAction::Resume).await
}

pub async fn close(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(state, id, ControlAction::Close).await
}

#[derive(Debug, Deserialize)]
pub struct FireBody {
    cue: FireTarget,
}

/// `POST /api/v1/drops/{id}/fire` with `{"cue": 3}` or `{"cue": {…ad-hoc cue…}}`.
pub async fn fire(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FireBody>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(state, id, ControlAction::Fire { cue: body.cue }).await
}
