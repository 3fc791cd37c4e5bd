//! After the live: the immediate follow-up (a confirmation with cross-sell suggestions and a
//! personal coupon, on every granted claim) and the retention loop (a nurture schedule of
//! offers counted from a buyer's redemption).
//!
//! # Rules
//!
//! - A drop's `follow_up` has up to [`MAX_CROSS_SELL`] cross-sell items (name 1–200
//!   characters, an `http(s)` URL, a price) and an optional coupon rule (`percent_off`
//!   1–100, `valid_h` 1–720, default 48). Each granted claim gets one follow-up coupon code,
//!   valid `valid_h` hours from the claim; it can be redeemed once.
//! - A nurture schedule has up to [`MAX_STEPS`] steps, each `{after_s, offer, detail}`,
//!   `after_s` from 1 s to 90 days after the buyer's redemption, in increasing order. Each
//!   step fires once per redeemed claim; a step for a viewer who is erased or has not
//!   consented to marketing is skipped, and the skip recorded.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::claim::Claim;
use crate::drop::DropRecord;
use crate::error::CoreError;
use crate::funnel::{Fact, FactKind};

pub const MAX_CROSS_SELL: usize = 10;
pub const MAX_STEPS: usize = 20;
const MAX_AFTER_S: u64 = 90 * 24 * 3600;
const MAX_DETAIL: usize = 4096;

/// An item suggested with a confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CrossSell {
    pub name: String,
    pub url: String,
    pub price_cents: u64,
}

/// The follow-up coupon each granted claim gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CouponRule {
    pub percent_off: u32,
    #[serde(default = "default_valid_h")]
    pub valid_h: u32,
}

fn default_valid_h() -> u32 {
    48
}

/// A drop's immediate follow-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    #[serde(default)]
    pub cross_sell: Vec<CrossSell>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<CouponRule>,
}

/// What a nurture step offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Offer {
    Subscription,
    EarlyAccessPass,
    Coupon,
}

/// One step of a nurture schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NurtureStep {
    pub after_s: u64,
    pub offer: Offer,
    #[serde(default)]
    pub detail: Value,
}

fn http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl FollowUp {
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.cross_sell.len() > MAX_CROSS_SELL {
            return Err(CoreError::invalid(
                "follow_up.cross_sell",
                format!("at most {MAX_CROSS_SELL} items"),
            ));
        }
        for (i, item) in self.cross_sell.iter().enumerate() {
            let f = |sub: &str| format!("follow_up.cross_sell[{i}].{sub}");
            if item.name.trim().is_empty() || item.name.chars().count() > 200 {
                return Err(CoreError::invalid(f("name"), "must be 1-200 characters"));
            }
            if !http_url(&item.url) {
                return Err(CoreError::invalid(f("url"), "must be an http(s) URL"));
            }
            if item.price_cents > 100_000_000 {
                return Err(CoreError::invalid(f("price_cents"), "absurd price"));
            }
        }
        if let Some(rule) = &self.coupon {
            if !(1..=100).contains(&rule.percent_off) {
                return Err(CoreError::invalid(
                    "follow_up.coupon.percent_off",
                    "must be 1-100",
                ));
            }
            if !(1..=720).contains(&rule.valid_h) {
                return Err(CoreError::invalid(
                    "follow_up.coupon.valid_h",
                    "must be 1-720 hours",
                ));
            }
        }
        Ok(())
    }
}

/// Checks a nurture schedule; `field` is where it sits (`nurture` or `steps`).
pub fn validate_schedule(steps: &[NurtureStep], field: &str) -> Result<(), CoreError> {
    if steps.len() > MAX_STEPS {
        return Err(CoreError::invalid(
            field,
            format!("at most {MAX_STEPS} steps"),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let f = |sub: &str| format!("{field}[{i}].{sub}");
        if !(1..=MAX_AFTER_S).contains(&step.after_s) {
            return Err(CoreError::invalid(f("after_s"), "must be 1 s to 90 days"));
        }
        if i > 0 && step.after_s <= steps[i - 1].after_s {
            return Err(CoreError::invalid(
                f("after_s"),
                "steps must come in increasing after_s",
            ));
        }
        if step.detail.to_string().len() > MAX_DETAIL {
            return Err(CoreError::invalid(
                f("detail"),
                format!("at most {MAX_DETAIL} bytes of JSON"),
            ));
        }
    }
    Ok(())
}

/// A follow-up coupon as a confirmation carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpCoupon {
    pub code: String,
    pub percent_off: u32,
    pub expires_ms: u64,
}

/// What the viewer who claimed is shown at once (with its `claim_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFollowUp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<FollowUpCoupon>,
    #[serde(default)]
    pub cross_sell: Vec<CrossSell>,
}

/// The follow-up coupon of `claim` under `rule`, with `code` (unique per claim).
pub fn coupon_for(claim: &Claim, rule: &CouponRule, code: String) -> FollowUpCoupon {
    FollowUpCoupon {
        code,
        percent_off: rule.percent_off,
        expires_ms: claim.created_ms + u64::from(rule.valid_h) * 3_600_000,
    }
}

impl Fact {
    /// The confirmation of a granted claim, if the drop has a follow-up: what was claimed,
    /// until when to check out (with the claim code), the cross-sell, and the coupon.
    pub fn followup(
        claim: &Claim,
        record: &DropRecord,
        coupon: Option<&FollowUpCoupon>,
    ) -> Option<Fact> {
        let follow_up = record.spec.follow_up.as_ref()?;
        let item = record.spec.item(&claim.sku);
        Some(
            Fact::new(
                FactKind::FollowupConfirmation,
                claim.code.as_str(),
                claim.drop_id.as_str(),
                Some(&claim.viewer_id),
                claim.created_ms,
                json!({
                    "code": claim.code.as_str(),
                    "sku": claim.sku,
                    "name": item.map(|i| i.name.as_str()),
                    "price_cents": item.map_or(0, |i| i.price_cents),
                    "currency": record.spec.currency,
                    "hold_until_ms": claim.hold_until_ms,
                    "cross_sell": follow_up.cross_sell,
                    "coupon": coupon,
                }),
            )
            .by(&record.maker),
        )
    }

    /// A follow-up coupon redeemed with an order of `amount_cents`.
    pub fn coupon_redeemed(
        drop_id: &str,
        viewer_id: &str,
        code: &str,
        amount_cents: u64,
        currency: &str,
        at_ms: u64,
    ) -> Fact {
        Fact::new(
            FactKind::CouponRedeemed,
            code,
            drop_id,
            Some(viewer_id),
            at_ms,
            json!({"code": code, "amount_cents": amount_cents, "currency": currency}),
        )
    }

    /// A nurture step reached (`skipped`: with the reason it was not offered).
    pub fn nurture(
        timer_id: &str,
        drop_id: &str,
        viewer_id: &str,
        step: &NurtureStep,
        skipped: Option<&str>,
        at_ms: u64,
    ) -> Fact {
        let (kind, detail) = match skipped {
            None => (
                FactKind::NurtureOffer,
                json!({"offer": step.offer, "detail": step.detail, "after_s": step.after_s}),
            ),
            Some(reason) => (
                FactKind::NurtureSkipped,
                json!({"offer": step.offer, "after_s": step.after_s, "reason": reason}),
            ),
        };
        Fact::new(kind, timer_id, drop_id, Some(viewer_id), at_ms, detail)
    }
}

/// When each step of `steps` falls due for a redemption at `redeemed_ms`.
pub fn schedule(steps: &[NurtureStep], redeemed_ms: u64) -> Vec<(usize, u64)> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i,
                redeemed_ms.saturating_add(s.after_s.saturating_mul(1000)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(after_s: u64) -> NurtureStep {
        NurtureStep {
            after_s,
            offer: Offer::Coupon,
            detail: json!({"percent_off": 10}),
        }
    }

    #[test]
    fn a_schedule_counts_from_the_redemption() {
        let steps = [step(3 * 86_400), step(7 * 86_400), step(14 * 86_400)];
        assert_eq!(validate_schedule(&steps, "nurture"), Ok(()));
        let due = schedule(&steps, 1_000);
        assert_eq!(
            due,
            [
                (0, 1_000 + 259_200_000),
                (1, 1_000 + 604_800_000),
                (2, 1_000 + 1_209_600_000)
            ]
        );
    }

    #[test]
    fn bad_schedules_and_follow_ups_name_the_field() {
        let field = |r: Result<(), CoreError>| match r {
            Err(CoreError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(validate_schedule(&[step(5), step(5)], "nurture")),
            "nurture[1].after_s"
        );
        assert_eq!(
            field(validate_schedule(&[step(0)], "nurture")),
            "nurture[0].after_s"
        );
        let bad = FollowUp {
            cross_sell: vec![CrossSell {
                name: "Saucer".into(),
                url: "javascript:alert(1)".into(),
                price_cents: 1200,
            }],
            coupon: None,
        };
        assert_eq!(field(bad.validate()), "follow_up.cross_sell[0].url");
        let bad = FollowUp {
            cross_sell: vec![],
            coupon: Some(CouponRule {
                percent_off: 0,
                valid_h: 48,
            }),
        };
        assert_eq!(field(bad.validate()), "follow_up.coupon.percent_off");
    }
}
