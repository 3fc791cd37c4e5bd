//! Follow-up coupons: one per granted claim of a drop with a follow-up (written with its
//! `followup.confirmation`), redeemed once within its validity, the redemption a
//! `coupon.redeemed` fact in the same transaction.

use dropwire_core::Fact;
use serde::Serialize;
use sqlx::Row;

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

/// A follow-up coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Coupon {
    pub code: String,
    pub claim_code: String,
    pub drop_id: String,
    pub viewer_id: String,
    pub percent_off: u32,
    pub expires_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redeemed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<u64>,
    pub currency: String,
}

/// Why a redemption was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponRefusal {
    Unknown,
    AlreadyRedeemed(Coupon),
    Expired(Coupon),
}

impl Ledger {
    /// One coupon of `maker`.
    pub async fn coupon(&self, maker: &str, code: &str) -> Result<Option<Coupon>, FunnelError> {
        let row = sqlx::query(
            "SELECT code, claim_code, drop_id, viewer_id, percent_off, expires_ms, redeemed_ms, amount_cents, currency \
             FROM coupons WHERE maker = $1 AND code = $2",
        )
        .bind(maker.to_owned())
        .bind(code.to_owned())
        .fetch_optional(&self.write)
        .await?;
        row.map(|r| {
            Ok(Coupon {
                code: r.try_get("code")?,
                claim_code: r.try_get("claim_code")?,
                drop_id: r.try_get("drop_id")?,
                viewer_id: r.try_get("viewer_id")?,
                percent_off: u32::try_from(r.try_get::<i64, _>("percent_off")?).unwrap_or(0),
                expires_ms: unms(r.try_get("expires_ms")?),
                redeemed_ms: r.try_get::<Option<i64>, _>("redeemed_ms")?.map(unms),
                amount_cents: r.try_get::<Option<i64>, _>("amount_cents")?.map(unms),
                currency: r.try_get("currency")?,
            })
        })
        .transpose()
    }

    /// Redeems a coupon once, before it expires, for an order of `amount_cents`.
    pub async fn redeem_coupon(
        &self,
        maker: &str,
        code: &str,
        amount_cents: u64,
        now_ms: u64,
    ) -> Result<Result<Coupon, CouponRefusal>, FunnelError> {
        let Some(coupon) = self.coupon(maker, code).await? else {
            return Ok(Err(CouponRefusal::Unknown));
        };
        if coupon.redeemed_ms.is_some() {
            return Ok(Err(CouponRefusal::AlreadyRedeemed(coupon)));
        }
        if coupon.expires_ms <= now_ms {
            return Ok(Err(CouponRefusal::Expired(coupon)));
        }
        let mut tx = self.write.begin().await?;
        // Guarded: of two redemptions at once, one changes the row.
        let won = sqlx::query(
            "UPDATE coupons SET redeemed_ms = $1, amount_cents = $2 WHERE code = $3 AND redeemed_ms IS NULL",
        )
        .bind(ms(now_ms))
        .bind(ms(amount_cents))
        .bind(code.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 0 {
            tx.rollback().await?;
            let now = self.coupon(maker, code).await?.unwrap_or(coupon);
            return Ok(Err(CouponRefusal::AlreadyRedeemed(now)));
        }
        let fact = Fact {
            maker: maker.to_owned(),
            ..Fact::coupon_redeemed(
                &coupon.drop_id,
                &coupon.viewer_id,
                code,
                amount_cents,
                &coupon.currency,
                now_ms,
            )
        };
        crate::facts::insert(&mut tx, &[fact]).await?;
        tx.commit().await?;
        Ok(Ok(Coupon {
            redeemed_ms: Some(now_ms),
            amount_cents: Some(amount_cents),
            ..coupon
        }))
    }
}
