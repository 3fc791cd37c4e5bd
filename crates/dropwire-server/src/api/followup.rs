//! After the live: follow-up coupons (redeemed by the shop) and the maker's nurture schedule.

use axum::Json;
use axum::extract::{Path, State};
use dropwire_core::followup::{NurtureStep, validate_schedule};
use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_funnel::{Coupon, CouponRefusal};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::app::AppState;
use crate::auth::Admin;
use crate::error::AppError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The order's amount, after the discount.
    amount_cents: u64,
}

/// `POST /api/v1/coupons/{code}/redeem` `{amount_cents}`: once, before it expires.
pub async fn redeem(
    _: Admin,
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
            DEFAULT_MAKER,
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    steps: Vec<NurtureStep>,
}

/// `GET /api/v1/nurture`: the maker's nurture schedule.
pub async fn get(_: Admin, State(state): State<AppState>) -> Result<Json<Schedule>, AppError> {
    let steps = state.ledger()?.nurture(DEFAULT_MAKER).await?;
    Ok(Json(Schedule { steps }))
}

/// `PUT /api/v1/nurture` `{steps}`: replaces it (drops with their own `nurture` keep theirs).
pub async fn put(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Schedule>,
) -> Result<Json<Schedule>, AppError> {
    validate_schedule(&body.steps, "steps")?;
    state
        .ledger()?
        .set_nurture(DEFAULT_MAKER, &body.steps)
        .await?;
    Ok(Json(body))
}
