//! Collectible passes (see `docs/api.md`, "Passes"): a maker's pass rules, the passes a
//! viewer earned (the maker's view, and the viewer's own), revocation, and the public
//! verification of a pass token ([`crate::pass_tokens`]). They live in the funnel ledger;
//! without one these routes answer 503 `ledger_off`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dropwire_funnel::{FactFilter, Pass, PassRule, PassRuleSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::auth::AuthViewer;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};
use crate::pass_tokens::{self, PassClaims};

/// The most pass rules one maker keeps.
const MAX_RULES: usize = 100;

fn no_rule(id: &str) -> AppError {
    AppError::NotFound(format!("no pass rule {id:?}"))
}

fn no_pass(id: &str) -> AppError {
    AppError::NotFound(format!("no pass {id:?}"))
}

/// `POST /api/v1/passes/rules` → 201 with the rule.
#[utoipa::path(
    post,
    path = "/api/v1/passes/rules",
    tag = "passes",
    operation_id = "create_pass_rule",
    summary = "Make a pass rule: what earns a pass (attendance, claims or quest points) and what it grants",
    request_body = PassRuleSpec,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The rule", body = PassRule),
        (status = 409, description = "`already_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`invalid`: `field` names the offending field (`id`, `name`, `earned_by.attendance`…, `grants.per_viewer_limit`), or the maker has 100 rules", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn create_rule(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<PassRuleSpec>,
) -> Result<(StatusCode, Json<PassRule>), AppError> {
    let ledger = state.ledger()?;
    spec.validate()
        .map_err(|(field, message)| invalid(&field, message))?;
    if ledger.pass_rules(caller.maker()).await?.len() >= MAX_RULES {
        return Err(invalid(
            "id",
            format!("at most {MAX_RULES} pass rules per maker; delete one first"),
        ));
    }
    let id = spec
        .id
        .clone()
        .unwrap_or_else(|| ulid::Ulid::new().to_string()[14..].to_lowercase());
    let made = ledger
        .create_pass_rule(caller.maker(), &id, &spec, state.clock.now_ms())
        .await?
        .ok_or_else(|| AppError::PassRuleExists(format!("a pass rule {id:?} exists already")))?;
    state.granting_makers.forget(caller.maker());
    tracing::info!(rule = %made.id, "pass rule created");
    Ok((StatusCode::CREATED, Json(made)))
}

fn invalid(field: &str, message: String) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.to_owned(),
        message,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PassRuleList {
    rules: Vec<PassRule>,
}

/// `GET /api/v1/passes/rules`
#[utoipa::path(
    get,
    path = "/api/v1/passes/rules",
    tag = "passes",
    operation_id = "list_pass_rules",
    summary = "Every pass rule of the caller's maker, oldest first",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rules", body = PassRuleList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list_rules(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PassRuleList>, AppError> {
    let rules = state.ledger()?.pass_rules(caller.maker()).await?;
    Ok(Json(PassRuleList { rules }))
}

/// `GET /api/v1/passes/rules/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/passes/rules/{id}",
    tag = "passes",
    operation_id = "get_pass_rule",
    summary = "One pass rule",
    params(("id" = String, Path, description = "The rule's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rule", body = PassRule),
        (status = 404, description = "`not_found`: the caller's maker has no such rule", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get_rule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PassRule>, AppError> {
    let found = state.ledger()?.pass_rule(caller.maker(), &id).await?;
    found.map(Json).ok_or_else(|| no_rule(&id))
}

/// `DELETE /api/v1/passes/rules/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/passes/rules/{id}",
    tag = "passes",
    operation_id = "delete_pass_rule",
    summary = "Delete a pass rule (the passes it earned stay)",
    params(("id" = String, Path, description = "The rule's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: the caller's maker has no such rule", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn delete_rule(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state
        .ledger()?
        .delete_pass_rule(caller.maker(), &id)
        .await?
    {
        state.granting_makers.forget(caller.maker());
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_rule(&id))
    }
}

/// A pass with its portable token.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedPass {
    #[serde(flatten)]
    pass: Pass,
    /// The pass as a JWS (EdDSA, Ed25519), verifiable with `GET /.well-known/jwks.json`.
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PassList {
    passes: Vec<SignedPass>,
}

async fn signed(state: &AppState, passes: Vec<Pass>) -> Result<PassList, AppError> {
    let key = pass_tokens::pass_key(state).await?;
    let passes = passes
        .into_iter()
        .map(|pass| {
            let token = pass_tokens::sign(state, &key, &pass)?;
            Ok(SignedPass { pass, token })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(PassList { passes })
}

/// `GET /api/v1/viewers/{viewer_id}/passes`
#[utoipa::path(
    get,
    path = "/api/v1/viewers/{viewer_id}/passes",
    tag = "passes",
    operation_id = "viewer_passes",
    summary = "A viewer's passes of the caller's maker (the operator without X-Dropwire-Maker: of every maker), oldest first, with their tokens",
    params(("viewer_id" = String, Path, description = "The viewer's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The passes (revoked ones with `revoked_ms`)", body = PassList),
        (status = 404, description = "`not_found`: the ledger has no fact of this viewer with the caller's maker", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn of_viewer(
    caller: Caller,
    State(state): State<AppState>,
    Path(viewer_id): Path<String>,
) -> Result<Json<PassList>, AppError> {
    let ledger = state.ledger()?;
    let maker = (!caller.sees_all()).then(|| caller.maker().to_owned());
    let passes = ledger.passes_of(maker.as_deref(), &viewer_id).await?;
    if passes.is_empty() {
        // A viewer the caller's maker never saw is not found (as another maker's drop).
        let seen = ledger
            .facts(&FactFilter {
                viewer_id: Some(viewer_id.clone()),
                maker,
                limit: Some(1),
                ..FactFilter::default()
            })
            .await?;
        if seen.is_empty() {
            return Err(AppError::NotFound(format!(
                "no viewer {viewer_id:?} in the caller's facts"
            )));
        }
    }
    Ok(Json(signed(&state, passes).await?))
}

/// `GET /api/v1/me/passes`
#[utoipa::path(
    get,
    path = "/api/v1/me/passes",
    tag = "passes",
    operation_id = "my_passes",
    summary = "The caller's own passes, of every maker, oldest first, with their tokens",
    security(("viewer_token" = [])),
    responses(
        (status = 200, description = "The passes (revoked ones with `revoked_ms`)", body = PassList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn mine(
    AuthViewer(viewer): AuthViewer,
    State(state): State<AppState>,
) -> Result<Json<PassList>, AppError> {
    let passes = state.ledger()?.passes_of(None, &viewer.id).await?;
    Ok(Json(signed(&state, passes).await?))
}

/// `DELETE /api/v1/passes/{id}` → the pass, revoked.
#[utoipa::path(
    delete,
    path = "/api/v1/passes/{id}",
    tag = "passes",
    operation_id = "revoke_pass",
    summary = "Revoke a pass: its token no longer verifies (a second revocation keeps the first time)",
    params(("id" = String, Path, description = "The pass's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The pass, with `revoked_ms`", body = Pass),
        (status = 404, description = "`not_found`: the caller's maker has no such pass", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Pass>, AppError> {
    let ledger = state.ledger()?;
    let maker = if caller.sees_all() {
        match ledger.pass(&id).await? {
            Some(p) => p.maker,
            None => return Err(no_pass(&id)),
        }
    } else {
        caller.maker().to_owned()
    };
    let revoked = ledger
        .revoke_pass(&maker, &id, state.clock.now_ms())
        .await?;
    let revoked = revoked.ok_or_else(|| no_pass(&id))?;
    tracing::info!(pass = %id, "pass revoked");
    Ok(Json(revoked))
}

/// `POST /api/v1/passes/verify`: `{"token"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// A pass token (longer than 4096 characters: not one).
    token: String,
}

/// Whether a pass token is valid.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verdict {
    valid: bool,
    /// Why not: `bad_signature` (not signed by this hub, or not a token), `unknown_pass`
    /// (no such pass, or the token does not match it) or `revoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<&'static str>,
    /// What the token says (once its signature is the hub's).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Object>)]
    claims: Option<PassClaims>,
    /// When the pass was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    revoked_ms: Option<u64>,
}

/// `POST /api/v1/passes/verify` (public).
#[utoipa::path(
    post,
    path = "/api/v1/passes/verify",
    tag = "passes",
    operation_id = "verify_pass",
    summary = "Whether a pass token is valid: signed by this hub, for a pass that exists and is not revoked (public)",
    request_body = VerifyBody,
    security(()),
    responses(
        (status = 200, description = "The verdict", body = Verdict),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<Verdict>, AppError> {
    let ledger = state.ledger()?;
    let key = pass_tokens::pass_key(&state).await?;
    let verdict = |valid, reason, claims, revoked_ms| {
        Json(Verdict {
            valid,
            reason,
            claims,
            revoked_ms,
        })
    };
    let Some(claims) = pass_tokens::check(&key, &body.token) else {
        return Ok(verdict(false, Some("bad_signature"), None, None));
    };
    let pass = ledger
        .pass(&claims.pass)
        .await?
        .filter(|p| p.viewer_id == claims.sub && p.maker == claims.maker && p.rule == claims.rule);
    Ok(match pass {
        None => verdict(false, Some("unknown_pass"), Some(claims), None),
        Some(p) if p.revoked_ms.is_some() => {
            verdict(false, Some("revoked"), Some(claims), p.revoked_ms)
        }
        Some(_) => verdict(true, None, Some(claims), None),
    })
}
