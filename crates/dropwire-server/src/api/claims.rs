//! Claims, figures and viewer identity: list claims, stats, redeem, mint viewer tokens.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use dropwire_core::{Claim, ClaimCode, ClaimState, DropState, QuestKind};
use dropwire_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::auth::{bearer, clean_handle};
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};
use crate::hub::ViewerCounts;

/// A claim as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimView {
    code: String,
    sku: String,
    viewer: String,
    handle: String,
    state: ClaimState,
    created_ms: u64,
    hold_until_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    redeemed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_ms: Option<u64>,
    rank: u32,
    points: u32,
}

impl From<Claim> for ClaimView {
    fn from(c: Claim) -> Self {
        ClaimView {
            code: c.code.to_string(),
            sku: c.sku,
            viewer: c.viewer_id,
            handle: c.handle,
            state: c.state,
            created_ms: c.created_ms,
            hold_until_ms: c.hold_until_ms,
            redeemed_ms: c.redeemed_ms,
            expired_ms: c.expired_ms,
            rank: c.rank,
            points: c.points,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimList {
    drop_id: String,
    claims: Vec<ClaimView>,
}

/// `GET /api/v1/drops/{id}/claims`
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}/claims",
    tag = "claims",
    operation_id = "list_claims",
    summary = "Every claim of a drop, in the order granted",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The claims", body = ClaimList),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClaimList>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    let claims = state.store.claims(&hub.id).await?;
    Ok(Json(ClaimList {
        drop_id: hub.id.to_string(),
        claims: claims.into_iter().map(ClaimView::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimCounts {
    held: u64,
    redeemed: u64,
    expired: u64,
    total: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    drop_id: String,
    state: DropState,
    viewers: ViewerCounts,
    claims: ClaimCounts,
    claimers: u64,
    stock: Vec<dropwire_core::protocol::StockItem>,
    stock_left: u64,
    /// Distinct claimers over unique viewers (0 when nobody watched).
    conversion: f64,
}

/// `GET /api/v1/drops/{id}/stats`
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}/stats",
    tag = "claims",
    operation_id = "stats",
    summary = "A drop's live figures: viewers, claims by state, stock left, conversion",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The figures", body = Stats),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store or the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn stats(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Stats>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    let f = state.store.figures(&hub.id).await?;
    let mut viewers = hub.viewer_counts();
    if let Some(funnel) = &state.funnel {
        // From the ledger: it survives restarts and counts a returning viewer once.
        viewers.unique = funnel.ledger.unique_viewers(hub.id.as_str()).await?;
    }
    let (_, view) = hub.view_at(state.clock.now_ms());
    let conversion = if viewers.unique == 0 {
        0.0
    } else {
        (f.claimers as f64 / viewers.unique as f64).min(1.0)
    };
    Ok(Json(Stats {
        drop_id: hub.id.to_string(),
        state: view.state,
        viewers,
        claims: ClaimCounts {
            held: f.held,
            redeemed: f.redeemed,
            expired: f.expired,
            total: f.held + f.redeemed + f.expired,
        },
        claimers: f.claimers,
        stock_left: f.stock.iter().map(|s| u64::from(s.left)).sum(),
        stock: f.stock,
        conversion,
    }))
}

/// `POST /api/v1/claims/{code}/redeem`: the shop confirms checkout.
#[utoipa::path(
    post,
    path = "/api/v1/claims/{code}/redeem",
    tag = "claims",
    operation_id = "redeem_claim",
    summary = "The shop confirms checkout: held → redeemed",
    params(("code" = String, Path, description = "The claim's code, read forgivingly (any case, dashes optional, I/L→1, O→0)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The claim, redeemed", body = ClaimView),
        (status = 404, description = "`not_found`: not a claim code; `no_such_claim`: no claim has it", body = ErrorBody),
        (status = 409, description = "`not_held`: the claim is redeemed or expired", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn redeem(
    caller: Caller,
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<ClaimView>, AppError> {
    let code = ClaimCode::parse(&code)
        .map_err(|_| AppError::NotFound(format!("no claim with code {code:?}")))?;
    if !caller.sees_all() && !among_own_claims(&state, &caller, &code).await? {
        return Err(StoreError::NoSuchClaim(code).into());
    }
    let claim = match state.store.redeem(&code, state.clock.now_ms()).await {
        Ok(claim) => claim,
        Err(e) => {
            if let StoreError::NotHeld {
                state: ClaimState::Expired,
                drop,
                ..
            } = &e
            {
                // Past its deadline: the store may have expired it just now (its unit is
                // back in stock), before any sweep, so the viewers must hear of it.
                state.hubs.stock_changed(drop).await;
            }
            return Err(e.into());
        }
    };
    tracing::info!(drop = %claim.drop_id, code = %claim.code, "claim redeemed");
    if let Ok(Some(hub)) = state.hubs.get(&claim.drop_id).await {
        let facts = crate::funnel::claim_facts(&state.keys, &claim, &hub.record());
        state.record(facts);
        let viewer = crate::auth::Viewer {
            id: claim.viewer_id.clone(),
            handle: claim.handle.clone(),
        };
        let at = claim.redeemed_ms.unwrap_or_else(|| state.clock.now_ms());
        let rid = format!("redeem:{}", claim.code);
        hub.quests_on(QuestKind::RedeemWithin, &viewer, &rid, at)
            .await;
    }
    Ok(Json(ClaimView::from(claim)))
}

/// Whether `code` is a claim of one of the caller's drops (a maker redeems its own claims
/// only; another maker's code answers like an unknown one). The store finds a claim by its
/// code alone, so the maker's drops are searched: bounded by the maker's own claims.
async fn among_own_claims(
    state: &AppState,
    caller: &Caller,
    code: &ClaimCode,
) -> Result<bool, AppError> {
    for record in state.store.list_drops().await? {
        if caller.sees(&record.maker)
            && state
                .store
                .claims(&record.id)
                .await?
                .iter()
                .any(|c| c.code == *code)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MintBody {
    /// Shown on the leaderboard: trimmed, control characters dropped, cut to 32 characters;
    /// it needs one visible character.
    #[schema(pattern = r"[^\s\x00-\x1f\x7f-\x9f]", example = "ana")]
    handle: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Minted {
    viewer_id: String,
    token: String,
    handle: String,
}

/// `POST /api/v1/viewers`: a signed viewer token. Rate-limited per IP unless the caller
/// presents the admin token (a shop or a load test minting in bulk).
#[utoipa::path(
    post,
    path = "/api/v1/viewers",
    tag = "viewers",
    operation_id = "mint_viewer",
    summary = "A signed viewer token for a handle (public; rate-limited per client without the admin token)",
    request_body = MintBody,
    security((), ("admin_token" = [])),
    responses(
        (status = 200, description = "The viewer's id and token (valid 30 days)", body = Minted),
        (status = 429, description = "`rate_limited`: too many tokens minted by this client this minute (`--mints-per-minute`); `Retry-After` says when to retry", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn mint_viewer(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<Json<Minted>, AppError> {
    let is_admin = bearer(&headers).is_some_and(|t| state.keys.is_admin(t));
    if !is_admin {
        let client = state.trusted_proxies.client_ip(peer.ip(), &headers);
        if let Err(not_until) = state.mint_limiter.check_key(&client) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(AppError::RateLimited {
                retry_after_s: wait.as_secs() + 1,
            });
        }
    }
    let handle = clean_handle(&body.handle).ok_or_else(|| {
        AppError::bad_request(
            "bad_request",
            "handle must have 1-32 visible characters",
            Some("handle".into()),
        )
    })?;
    let viewer_id = ulid::Ulid::new().to_string();
    let token = state
        .keys
        .mint(&viewer_id, &handle, state.clock.now_ms() / 1000)
        .map_err(|source| AppError::Encode {
            what: "a viewer token",
            source,
        })?;
    Ok(Json(Minted {
        viewer_id,
        token,
        handle,
    }))
}
