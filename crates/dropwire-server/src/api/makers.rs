//! Makers (the hub's tenants) and their tokens (see `docs/api.md`, "Makers"): the operator
//! creates and lists makers; a maker reads itself and rotates its own tokens. They live in
//! the funnel ledger; without one these routes answer 503 `ledger_off`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dropwire_core::DropId;
use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_funnel::{Maker, MakerToken, NewToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::{self, Caller};
use crate::error::{AppError, ErrorBody};

/// The most makers a hub keeps, and valid tokens one maker holds.
const MAX_MAKERS: usize = 1000;
const MAX_TOKENS: usize = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMaker {
    /// `[a-z0-9-]`, 1–64; made from the name when absent. `default` is the operator's.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    id: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    /// What the token is for (e.g. `shop`, `laptop`); at most 100 characters.
    #[serde(default)]
    #[schema(max_length = 100)]
    label: String,
}

/// A new maker with its first token.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedMaker {
    id: String,
    name: String,
    created_ms: u64,
    /// The maker's first token (`dwm_…`), shown this once: only its hash is kept.
    token: String,
    token_id: String,
}

/// A new token of a maker.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    about: MakerToken,
    /// The token (`dwm_…`), shown this once.
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MakerList {
    makers: Vec<Maker>,
}

/// A maker and its tokens (never their text).
#[derive(Debug, Serialize, ToSchema)]
pub struct MakerView {
    #[serde(flatten)]
    maker: Maker,
    tokens: Vec<MakerToken>,
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    })
}

fn label(raw: &str) -> Result<String, AppError> {
    let label = raw.trim();
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(invalid("label", "at most 100 printable characters"));
    }
    Ok(label.to_owned())
}

fn new_token(label: String) -> Result<(String, NewToken), AppError> {
    let text = caller::new_token()?;
    let token = NewToken {
        id: format!("tok-{}", ulid::Ulid::new().to_string().to_lowercase()),
        label,
        hash: caller::token_hash(&text),
    };
    Ok((text, token))
}

/// The maker `id` names, if the caller may see it (another one answers like a missing one).
fn visible(caller: &Caller, id: &str) -> Result<(), AppError> {
    if caller.is_operator() || caller.maker() == id {
        Ok(())
    } else {
        Err(AppError::NoSuchMaker(id.to_owned()))
    }
}

/// `POST /api/v1/makers` → 201 with the maker and its first token.
#[utoipa::path(
    post,
    path = "/api/v1/makers",
    tag = "makers",
    operation_id = "create_maker",
    summary = "Create a maker (a tenant) with its first token (operator only)",
    request_body = NewMaker,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The maker and its first token, shown this once", body = CreatedMaker),
        (status = 409, description = "`already_exists`: the id is taken (`default` is the operator's)", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad id or name, or the hub has the most makers it keeps (1000); `field` names it", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewMaker>,
) -> Result<(StatusCode, Json<CreatedMaker>), AppError> {
    caller.operator_only()?;
    let ledger = state.ledger()?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid("name", "must be 1-200 printable characters"));
    }
    let id = match &body.id {
        Some(id) => DropId::parse(id)
            .map_err(|_| invalid("id", "must be 1-64 of a-z, 0-9 and -"))?
            .to_string(),
        None => DropId::from_title(&name, &ulid::Ulid::new().to_string()[20..]).to_string(),
    };
    if id == DEFAULT_MAKER {
        return Err(AppError::MakerExists(id));
    }
    if ledger.makers().await?.len() >= MAX_MAKERS {
        return Err(invalid("id", format!("at most {MAX_MAKERS} makers")));
    }
    let (text, token) = new_token("first".into())?;
    let made = ledger
        .create_maker(&id, &name, &token, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::MakerExists(id.clone()))?;
    tracing::info!(maker = %made.id, "maker created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedMaker {
            id: made.id,
            name: made.name,
            created_ms: made.created_ms,
            token: text,
            token_id: token.id,
        }),
    ))
}

/// `GET /api/v1/makers`
#[utoipa::path(
    get,
    path = "/api/v1/makers",
    tag = "makers",
    operation_id = "list_makers",
    summary = "Every maker, oldest first (operator only; the implicit `default` is not listed)",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The makers", body = MakerList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<MakerList>, AppError> {
    caller.operator_only()?;
    let makers = state.ledger()?.makers().await?;
    Ok(Json(MakerList { makers }))
}

/// `GET /api/v1/makers/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/makers/{id}",
    tag = "makers",
    operation_id = "get_maker",
    summary = "One maker and its tokens (the operator, or that maker)",
    params(("id" = String, Path, description = "The maker's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The maker and its tokens (their ids and labels, never their text)", body = MakerView),
        (status = 404, description = "`not_found`: no such maker, or another maker's", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MakerView>, AppError> {
    visible(&caller, &id)?;
    let ledger = state.ledger()?;
    let maker = if id == DEFAULT_MAKER {
        Maker {
            id: DEFAULT_MAKER.into(),
            name: DEFAULT_MAKER.into(),
            created_ms: 0,
        }
    } else {
        ledger
            .maker(&id)
            .await?
            .ok_or_else(|| AppError::NoSuchMaker(id.clone()))?
    };
    let tokens = ledger.maker_tokens(&id).await?;
    Ok(Json(MakerView { maker, tokens }))
}

/// `POST /api/v1/makers/{id}/tokens` → 201 with the new token.
#[utoipa::path(
    post,
    path = "/api/v1/makers/{id}/tokens",
    tag = "makers",
    operation_id = "create_maker_token",
    summary = "Another token of a maker, for a rotation (the operator, or that maker)",
    params(("id" = String, Path, description = "The maker's id", min_length = 1)),
    request_body = NewTokenBody,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The token, shown this once", body = CreatedToken),
        (status = 404, description = "`not_found`: no such maker (`default` has no tokens: it is the operator's), or another maker's", body = ErrorBody),
        (status = 422, description = "`invalid`: a bad label, or the maker holds the most valid tokens it may (20): revoke one first", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn add_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    visible(&caller, &id)?;
    let ledger = state.ledger()?;
    let label = label(&body.label)?;
    let valid = ledger
        .maker_tokens(&id)
        .await?
        .iter()
        .filter(|t| t.revoked_ms.is_none())
        .count();
    if valid >= MAX_TOKENS {
        return Err(invalid(
            "label",
            format!("at most {MAX_TOKENS} valid tokens per maker; revoke one first"),
        ));
    }
    let (text, token) = new_token(label)?;
    let about = ledger
        .add_maker_token(&id, &token, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::NoSuchMaker(id.clone()))?;
    tracing::info!(maker = %id, token = %about.id, "maker token added");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken { about, token: text }),
    ))
}

/// `DELETE /api/v1/makers/{id}/tokens/{token_id}` → the token, revoked.
#[utoipa::path(
    delete,
    path = "/api/v1/makers/{id}/tokens/{token_id}",
    tag = "makers",
    operation_id = "revoke_maker_token",
    summary = "Revoke a maker's token (the operator, or that maker); refused at once on this node, within 2 s on the others",
    params(
        ("id" = String, Path, description = "The maker's id", min_length = 1),
        ("token_id" = String, Path, description = "The token's id", min_length = 1),
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The token, with `revoked_ms` (revoking again keeps the first moment)", body = MakerToken),
        (status = 404, description = "`not_found`: no such maker or token, or another maker's", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<Json<MakerToken>, AppError> {
    visible(&caller, &id)?;
    let revoked = state
        .ledger()?
        .revoke_maker_token(&id, &token_id, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("maker {id} has no token {token_id:?}")))?;
    state.maker_tokens.forget(&token_id);
    tracing::info!(maker = %id, token = %token_id, "maker token revoked");
    Ok(Json(revoked))
}
