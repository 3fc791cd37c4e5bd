//! Drops and their timeline: create, list, get, start, pause, resume, close, fire.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dropwire_core::protocol::DropSnapshot;
use dropwire_core::recipe::RecipeRef;
use dropwire_core::{ControlAction, DropId, DropRecord, DropSpec, FireTarget, TimelineView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::recipes::{DropFromRecipe, drop_from_recipe};
use super::{ApiBody, ApiJson, parse_json};
use crate::app::AppState;
use crate::calendar::coop::{CoopClash, clashes};
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};
use crate::hub::DropHub;

/// The create body of `POST /api/v1/drops`: a whole drop, or a recipe and its parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read by hand (`create`, for errors that name the field): this is its schema
pub enum CreateDrop {
    /// A drop written out in full.
    Spec(DropSpec),
    /// A drop made from a recipe (told apart by its `recipe` field).
    Recipe(DropFromRecipe),
}

/// `POST /api/v1/drops` → 201 with the drop.
#[utoipa::path(
    post,
    path = "/api/v1/drops",
    tag = "drops",
    operation_id = "create_drop",
    summary = "Create a drop (scheduled), written out or from a recipe",
    request_body = CreateDrop,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The drop, with its `id`, `obs_key` and script (and `recipe` when made from one, `coop_overlaps` when it collides with drops on its maker's co-op calendars)", body = AdminDrop),
        (status = 409, description = "`already_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`invalid`: the drop or its script breaks a rule; `field` is its path, e.g. `script.cues[2].sku` (from a recipe: `recipe` for an unknown recipe, `params.NAME` for a missing, unknown or mistyped parameter, `drop.…` for the recipe's part at fault, the message naming the cue and the parameter)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached; `ledger_off`: a drop from a recipe on a hub without a ledger", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<AdminDrop>), AppError> {
    let from_recipe = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
        .is_ok_and(|fields| fields.contains_key("recipe"));
    let hub = if from_recipe {
        let (spec, recipe) = drop_from_recipe(&state, &caller, parse_json(&body)?).await?;
        create_drop_from(&state, spec, Some(recipe), caller.maker()).await?
    } else {
        create_drop_from(&state, parse_json(&body)?, None, caller.maker()).await?
    };
    Ok((StatusCode::CREATED, Json(admin_drop(&state, &hub).await?)))
}

/// Validates `spec` and creates its drop (scheduled), with an id made from the title when
/// it names none: what `POST /api/v1/drops` does, for the API and `serve --demo` alike
/// (a drop of the default maker).
pub async fn create_drop(state: &AppState, spec: DropSpec) -> Result<Arc<DropHub>, AppError> {
    create_drop_from(state, spec, None, dropwire_core::funnel::DEFAULT_MAKER).await
}

/// [`create_drop`] of a drop of `maker`, made from `recipe` (which it remembers).
pub async fn create_drop_from(
    state: &AppState,
    spec: DropSpec,
    recipe: Option<RecipeRef>,
    maker: &str,
) -> Result<Arc<DropHub>, AppError> {
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
        recipe,
        maker: maker.to_owned(),
    };
    state.store.create_drop(record).await?;
    state.calendar.forget();
    tracing::info!(drop = %id, "drop created");
    state.hub(&id).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DropSummary {
    id: String,
    title: String,
    kind: dropwire_core::DropKind,
    state: dropwire_core::DropState,
    created_ms: u64,
    started_ms: Option<u64>,
    closed_ms: Option<u64>,
    obs_key: String,
    /// The maker whose drop it is.
    maker: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DropList {
    drops: Vec<DropSummary>,
}

/// `GET /api/v1/drops`
#[utoipa::path(
    get,
    path = "/api/v1/drops",
    tag = "drops",
    operation_id = "list_drops",
    summary = "Every drop the caller sees (the operator: all; a maker: its own)",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drops", body = DropList),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<DropList>, AppError> {
    let now = state.clock.now_ms();
    let drops = state
        .store
        .list_drops()
        .await?
        .into_iter()
        .filter(|r| caller.sees(&r.maker))
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
                maker: r.maker,
            }
        })
        .collect();
    Ok(Json(DropList { drops }))
}

/// `GET /api/v1/drops/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}",
    tag = "drops",
    operation_id = "get_drop",
    summary = "One drop with its live state, script and OBS key",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop (with `coop_overlaps` when it collides with drops on its maker's co-op calendars)", body = AdminDrop),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AdminDrop>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    Ok(Json(admin_drop(&state, &hub).await?))
}

/// A drop as its maker sees it: the drop object, and the warnings of its co-op calendars.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDrop {
    #[serde(flatten)]
    pub drop: DropSnapshot,
    /// The drops on its maker's co-op calendars whose live windows collide with this one's
    /// (a warning: nothing is refused); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coop_overlaps: Vec<CoopClash>,
}

async fn admin_drop(state: &AppState, hub: &DropHub) -> Result<AdminDrop, AppError> {
    let drop = hub.admin_snapshot().await?;
    let coop_overlaps = match drop.starts_at {
        Some(_) => clashes(state, hub.id.as_str(), &hub.record().maker).await,
        None => Vec::new(),
    };
    Ok(AdminDrop {
        drop,
        coop_overlaps,
    })
}

async fn control(
    caller: Caller,
    state: AppState,
    id: String,
    action: ControlAction,
) -> Result<Json<DropSnapshot>, AppError> {
    let hub = caller.hub(&state, &id).await?;
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

#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/start",
    tag = "drops",
    operation_id = "start",
    summary = "Go live: scheduled → live; the script's clock starts",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop after the change (its effects are broadcast to viewers before this answer)", body = DropSnapshot),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`wrong_state`: the action makes no sense in the drop's state; `conflict`: the control log kept changing (retry)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn start(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(caller, state, id, ControlAction::Start).await
}

#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/pause",
    tag = "drops",
    operation_id = "pause",
    summary = "live → paused; the script's clock stops, claims answer not_open",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop after the change (its effects are broadcast to viewers before this answer)", body = DropSnapshot),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`wrong_state`: the action makes no sense in the drop's state; `conflict`: the control log kept changing (retry)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn pause(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(caller, state, id, ControlAction::Pause).await
}

#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/resume",
    tag = "drops",
    operation_id = "resume",
    summary = "paused → live; the script continues where it stopped",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop after the change (its effects are broadcast to viewers before this answer)", body = DropSnapshot),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`wrong_state`: the action makes no sense in the drop's state; `conflict`: the control log kept changing (retry)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn resume(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(caller, state, id, ControlAction::Resume).await
}

#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/close",
    tag = "drops",
    operation_id = "close",
    summary = "Close the drop (from any state); claims answer closed",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop after the change (its effects are broadcast to viewers before this answer)", body = DropSnapshot),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`wrong_state`: the action makes no sense in the drop's state; `conflict`: the control log kept changing (retry)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn close(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(caller, state, id, ControlAction::Close).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FireBody {
    /// A script cue's index, or an ad-hoc cue (a cue object; its `at_s` is ignored).
    cue: FireTarget,
}

/// `POST /api/v1/drops/{id}/fire` with `{"cue": 3}` or `{"cue": {…ad-hoc cue…}}`.
#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/fire",
    tag = "drops",
    operation_id = "fire",
    summary = "Fire a script cue now, or an ad-hoc cue (live or paused drops)",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = FireBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The drop after the cue fired (broadcast to viewers before this answer)", body = DropSnapshot),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`wrong_state`: the drop is not live or paused; `already_fired`: that script cue has fired; `conflict`: the control log kept changing (retry)", body = ErrorBody),
        (status = 422, description = "`no_such_cue`: the script has no such cue; `invalid`: the ad-hoc cue breaks a rule", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn fire(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FireBody>,
) -> Result<Json<DropSnapshot>, AppError> {
    control(caller, state, id, ControlAction::Fire { cue: body.cue }).await
}
