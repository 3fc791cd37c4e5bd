//! Co-ops: makers grouped to share one launch calendar (see `docs/api.md`, "Co-ops", and
//! `dropwire_core::coop` for the rules). They live in the funnel ledger; without a ledger
//! these routes answer 503 `ledger_off`. Managing them takes the operator's (admin) token
//! (a maker's token gets 403); a member maker reads its co-ops, their overlaps and KPIs
//! (another co-op answers 404 like a missing one); a co-op's calendar is public (with its iCalendar feed, `GET /coops/{id}/calendar.ics`,
//! in [`crate::calendar::coop`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dropwire_core::coop::{self, CoopSpec, MAX_MAKERS};
use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_funnel::{Coop, CoopKpis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::calendar::coop::{
    CoopCalendarEntry, CoopOverlap, described, find, listed, with_overlaps,
};
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

/// The most co-ops a hub keeps.
const MAX_COOPS: usize = 200;

fn invalid(field: &str, message: String) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.to_owned(),
        message,
    })
}

/// Whether the caller may read `coop`: the operator (without `X-Dropwire-Maker`) reads
/// every co-op, a maker (or the operator acting as one) those it belongs to.
fn member(caller: &Caller, coop: &Coop) -> bool {
    caller.sees_all() || coop.makers.iter().any(|m| m == caller.maker())
}

/// `coop` if the caller may read it; otherwise the answer a missing co-op gets.
fn seen(caller: &Caller, coop: Coop) -> Result<Coop, AppError> {
    if member(caller, &coop) {
        Ok(coop)
    } else {
        Err(AppError::NoSuchCoop(format!("no co-op {:?}", coop.id)))
    }
}

/// Whether `maker` is a maker of this hub (`default` always is).
async fn maker_exists(state: &AppState, maker: &str) -> Result<bool, AppError> {
    Ok(maker == DEFAULT_MAKER || state.ledger()?.maker(maker).await?.is_some())
}

/// `POST /api/v1/coops` → 201 with the co-op.
#[utoipa::path(
    post,
    path = "/api/v1/coops",
    tag = "coops",
    operation_id = "create_coop",
    summary = "Make a co-op: makers that share one launch calendar",
    request_body = CoopSpec,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The co-op", body = Coop),
        (status = 409, description = "`already_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`invalid`: the id, the name (1-200 characters) or a maker id (`makers[2]`) breaks a rule or names no maker of this hub, more than 50 makers, or the hub has 200 co-ops already; `field` names it", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<CoopSpec>,
) -> Result<(StatusCode, Json<Coop>), AppError> {
    caller.operator_only()?;
    let ledger = state.ledger()?;
    let makers = spec.validate()?;
    for (i, maker) in makers.iter().enumerate() {
        if !maker_exists(&state, maker).await? {
            return Err(invalid(
                &format!("makers[{i}]"),
                format!("no maker {maker:?}"),
            ));
        }
    }
    let id = spec.id_or(&ulid::Ulid::new().to_string()[20..])?;
    if ledger.coops().await?.len() >= MAX_COOPS {
        return Err(invalid(
            "id",
            format!("at most {MAX_COOPS} co-ops per hub; delete one first"),
        ));
    }
    let made = ledger
        .create_coop(&id, &spec.name, &makers, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::CoopExists(format!("a co-op {id:?} exists already")))?;
    tracing::info!(coop = %made.id, makers = made.makers.len(), "co-op created");
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoopList {
    coops: Vec<Coop>,
}

/// `GET /api/v1/coops`
#[utoipa::path(
    get,
    path = "/api/v1/coops",
    tag = "coops",
    operation_id = "list_coops",
    summary = "Every co-op with its members, oldest first",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The co-ops", body = CoopList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<CoopList>, AppError> {
    let mut coops = state.ledger()?.coops().await?;
    coops.retain(|c| member(&caller, c));
    Ok(Json(CoopList { coops }))
}

/// `GET /api/v1/coops/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/coops/{id}",
    tag = "coops",
    operation_id = "get_coop",
    summary = "One co-op with its members",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The co-op", body = Coop),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Coop>, AppError> {
    seen(&caller, find(&state, &id).await?).map(Json)
}

/// What a `PATCH` may change (the members: `PUT`/`DELETE /api/v1/coops/{id}/makers/{maker}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoopPatch {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
}

/// `PATCH /api/v1/coops/{id}`
#[utoipa::path(
    patch,
    path = "/api/v1/coops/{id}",
    tag = "coops",
    operation_id = "update_coop",
    summary = "Rename a co-op",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    request_body = CoopPatch,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The co-op after the change", body = Coop),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 422, description = "`invalid`: the name breaks a rule (1-200 characters, not only spaces, no control characters); `field` is `name`", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<CoopPatch>,
) -> Result<Json<Coop>, AppError> {
    caller.operator_only()?;
    let ledger = state.ledger()?;
    let Some(name) = patch.name else {
        return find(&state, &id).await.map(Json);
    };
    coop::check_name(&name)?;
    let changed = ledger
        .rename_coop(&id, &name)
        .await?
        .ok_or_else(|| AppError::NoSuchCoop(format!("no co-op {id:?}")))?;
    Ok(Json(changed))
}

/// `DELETE /api/v1/coops/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/coops/{id}",
    tag = "coops",
    operation_id = "delete_coop",
    summary = "Delete a co-op (its makers and their drops stay)",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.operator_only()?;
    if state.ledger()?.delete_coop(&id).await? {
        tracing::info!(coop = %id, "co-op deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NoSuchCoop(format!("no co-op {id:?}")))
    }
}

/// `PUT /api/v1/coops/{id}/makers/{maker}`
#[utoipa::path(
    put,
    path = "/api/v1/coops/{id}/makers/{maker}",
    tag = "coops",
    operation_id = "add_coop_maker",
    summary = "Add a maker to a co-op (again: no change)",
    params(
        ("id" = String, Path, description = "The co-op's id", min_length = 1),
        ("maker" = String, Path, description = "The maker's id: 1-64 of a-z, 0-9 and -", pattern = "^[a-z0-9-]{1,64}$"),
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The co-op with the maker", body = Coop),
        (status = 404, description = "`no_such_coop`: no such co-op; `not_found`: no such maker (`POST /api/v1/makers` makes one)", body = ErrorBody),
        (status = 422, description = "`invalid`: the maker id breaks a rule (1-64 of a-z, 0-9, -), or the co-op has 50 makers already; `field` is `maker`", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn add_maker(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, maker)): Path<(String, String)>,
) -> Result<Json<Coop>, AppError> {
    caller.operator_only()?;
    let ledger = state.ledger()?;
    coop::check_id("maker", "maker", &maker)?;
    if !maker_exists(&state, &maker).await? {
        return Err(AppError::NoSuchMaker(format!("no maker {maker:?}")));
    }
    let coop = ledger
        .add_coop_maker(&id, &maker, MAX_MAKERS, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::NoSuchCoop(format!("no co-op {id:?}")))?;
    if !coop.makers.contains(&maker) {
        return Err(invalid(
            "maker",
            format!("the co-op has {MAX_MAKERS} makers, the most it may; remove one first"),
        ));
    }
    Ok(Json(coop))
}

/// `DELETE /api/v1/coops/{id}/makers/{maker}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/coops/{id}/makers/{maker}",
    tag = "coops",
    operation_id = "remove_coop_maker",
    summary = "Remove a maker from a co-op (the maker and its drops stay)",
    params(
        ("id" = String, Path, description = "The co-op's id", min_length = 1),
        ("maker" = String, Path, description = "The maker's id: 1-64 of a-z, 0-9 and -", pattern = "^[a-z0-9-]{1,64}$"),
    ),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "`no_such_coop`: no such co-op; `not_found`: the maker is not a member", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn remove_maker(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, maker)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    caller.operator_only()?;
    match state.ledger()?.remove_coop_maker(&id, &maker).await? {
        None => Err(AppError::NoSuchCoop(format!("no co-op {id:?}"))),
        Some(false) => Err(AppError::NotFound(format!(
            "{maker:?} is not a maker of co-op {id:?}"
        ))),
        Some(true) => Ok(StatusCode::NO_CONTENT),
    }
}

/// `GET /api/v1/coops/{id}/calendar`
#[derive(Debug, Serialize, ToSchema)]
pub struct CoopCalendar {
    pub coop: String,
    pub name: String,
    /// The member makers' upcoming drops, in order of their start.
    pub drops: Vec<CoopCalendarEntry>,
}

/// `GET /api/v1/coops/{id}/calendar`
#[utoipa::path(
    get,
    path = "/api/v1/coops/{id}/calendar",
    tag = "coops",
    operation_id = "coop_calendar",
    summary = "A co-op's shared launch calendar (public): its makers' upcoming drops, each with the drops it overlaps",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    security(()),
    responses(
        (status = 200, description = "The drops, in order of their start, as `GET /api/v1/calendar` lists them, each with `overlaps`. As an iCalendar feed: `GET /coops/{id}/calendar.ics`", body = CoopCalendar),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger or the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn calendar(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CoopCalendar>, AppError> {
    let coop = find(&state, &id).await?;
    let (drops, pairs) = listed(&state, &coop).await?;
    Ok(Json(CoopCalendar {
        coop: coop.id,
        name: coop.name,
        drops: with_overlaps(drops, &pairs),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoopOverlaps {
    pub coop: String,
    /// In order of the first drop's start, then the second's.
    pub overlaps: Vec<CoopOverlap>,
}

/// `GET /api/v1/coops/{id}/overlaps`
#[utoipa::path(
    get,
    path = "/api/v1/coops/{id}/overlaps",
    tag = "coops",
    operation_id = "coop_overlaps",
    summary = "The pairs of a co-op's upcoming drops whose live windows collide",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Each pair with the interval where both are live", body = CoopOverlaps),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger or the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn overlaps(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CoopOverlaps>, AppError> {
    let coop = seen(&caller, find(&state, &id).await?)?;
    let (drops, pairs) = listed(&state, &coop).await?;
    Ok(Json(CoopOverlaps {
        coop: coop.id,
        overlaps: described(&drops, &pairs),
    }))
}

/// `GET /api/v1/coops/{id}/kpis`
#[utoipa::path(
    get,
    path = "/api/v1/coops/{id}/kpis",
    tag = "coops",
    operation_id = "coop_kpis",
    summary = "A co-op's KPIs: each member maker's over all its drops, side by side, and their total",
    params(("id" = String, Path, description = "The co-op's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per maker, the counts of its drops summed and the ratios of those sums (as `GET /api/v1/analytics/summary` pools a group); `total` sums the members' counts and revenue and recomputes the ratios from the sums", body = CoopKpis),
        (status = 404, description = "`no_such_coop`: no such co-op", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn kpis(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CoopKpis>, AppError> {
    let coop = seen(&caller, find(&state, &id).await?)?;
    let kpis = state
        .ledger()?
        .coop_kpis(&coop.id, &coop.makers, state.clock.now_ms())
        .await?;
    Ok(Json(kpis))
}
