//! After the live: follow-up coupons (redeemed by the shop) and the maker's nurture schedule.

use axum::Json;
use axum::extract::{Path, State};
use dropwire_core::followup::{NurtureStep, validate_schedule};

use dropwire_funnel::{Coupon, CouponRefusal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The order's amount, after the discount.
    #[schema(maximum = 100_000_000)]
    amount_cents: u64,
}

/// `POST /api/v1/coupons/{code}/redeem` `{amount_cents}`: once, before it expires.
#[utoipa::path(
    post,
    path = "/api/v1/coupons/{code}/redeem",
    tag = "follow-up",
    operation_id = "redeem_coupon",
    summary = "The shop redeems a follow-up coupon with the order: once, before it expires",
    params(("code" = String, Path, description = "The coupon's code, read like claim codes (any case, dashes optional)", min_length = 1)),
    request_body = RedeemBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The coupon, redeemed", body = Coupon),
        (status = 404, description = "`no_such_coupon`: no such coupon", body = ErrorBody),
        (status = 409, description = "`coupon_redeemed`: redeemed already; `coupon_expired`: past `expires_ms`", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn redeem(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<Coupon>, AppError> {
    if body.amount_cents > 100_000_000 {
        return Err(AppError::bad_request(
            "bad_request",
            "absurd amount",
            Some("amount_cents".into()),
        ));
    }
    // Codes are read as forgivingly as claim codes (case, dashes, look-alike letters).
    let code = dropwire_core::ClaimCode::parse(&raw)
        .map_err(|_| AppError::NoSuchCoupon(format!("no coupon {raw:?}")))?;
    let ledger = state.ledger()?;
    match ledger
        .redeem_coupon(
            caller.maker(),
            code.as_str(),
            body.amount_cents,
            state.clock.now_ms(),
        )
        .await?
    {
        Ok(coupon) => {
            tracing::info!(code = %coupon.code, "follow-up coupon redeemed");
            Ok(Json(coupon))
        }
        Err(CouponRefusal::Unknown) => Err(AppError::NoSuchCoupon(format!("no coupon {raw:?}"))),
        Err(CouponRefusal::AlreadyRedeemed(c)) => Err(AppError::CouponRedeemed(format!(
            "coupon {} was redeemed already (at {} ms)",
            c.code,
            c.redeemed_ms.unwrap_or(0)
        ))),
        Err(CouponRefusal::Expired(c)) => Err(AppError::CouponExpired(format!(
            "coupon {} expired at {} ms",
            c.code, c.expires_ms
        ))),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// At most 20, `after_s` increasing (1 s to 90 days).
    #[schema(max_items = 20)]
    steps: Vec<NurtureStep>,
}

/// `GET /api/v1/nurture`: the maker's nurture schedule.
#[utoipa::path(
    get,
    path = "/api/v1/nurture",
    tag = "follow-up",
    operation_id = "get_nurture",
    summary = "The maker's nurture schedule",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The schedule", body = Schedule),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Schedule>, AppError> {
    let steps = state.ledger()?.nurture(caller.maker()).await?;
    Ok(Json(Schedule { steps }))
}

/// `PUT /api/v1/nurture` `{steps}`: replaces it (drops with their own `nurture` keep theirs).
#[utoipa::path(
    put,
    path = "/api/v1/nurture",
    tag = "follow-up",
    operation_id = "put_nurture",
    summary = "Replace the maker's nurture schedule (drops with their own `nurture` keep theirs)",
    request_body = Schedule,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The schedule, as stored", body = Schedule),
        (status = 422, description = "`invalid`: a step breaks a rule (`field` names it): `after_s` not increasing or out of 1 s–90 days, more than 20 steps, a `detail` over 4 KiB", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn put(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Schedule>,
) -> Result<Json<Schedule>, AppError> {
    validate_schedule(&body.steps, "steps")?;
    state
        .ledger()?
        .set_nurture(caller.maker(), &body.steps)
        .await?;
    Ok(Json(body))
}
