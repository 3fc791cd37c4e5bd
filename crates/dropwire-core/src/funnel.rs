//! Funnel facts: what the ledger records of every step a viewer takes across drops.
//!
//! A fact is immutable and has a unique id; writing one twice is a no-op. The ids of facts
//! that follow from the live store's state (a claim granted, redeemed or expired; a drop
//! gone live or closed; a viewer's first attendance) are derived from what they describe,
//! so the hub may write them again after a crash — reconciling from the store — and each
//! still appears once.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::claim::{Claim, ClaimState};
use crate::drop::DropRecord;
use crate::timeline::TimelineView;

/// The maker every drop belongs to until makers are tenants of their own.
pub const DEFAULT_MAKER: &str = "default";

/// What happened. The names are the API's `kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum FactKind {
    #[serde(rename = "waitlist.joined")]
    WaitlistJoined,
    #[serde(rename = "waitlist.updated")]
    WaitlistUpdated,
    #[serde(rename = "viewer.attended")]
    ViewerAttended,
    #[serde(rename = "drop.scheduled")]
    DropScheduled,
    #[serde(rename = "drop.live")]
    DropLive,
    #[serde(rename = "drop.closed")]
    DropClosed,
    #[serde(rename = "claim.granted")]
    ClaimGranted,
    #[serde(rename = "claim.redeemed")]
    ClaimRedeemed,
    #[serde(rename = "claim.expired")]
    ClaimExpired,
    #[serde(rename = "coupon.issued")]
    CouponIssued,
    #[serde(rename = "viewer.erased")]
    ViewerErased,
    #[serde(rename = "followup.confirmation")]
    FollowupConfirmation,
    #[serde(rename = "coupon.redeemed")]
    CouponRedeemed,
    #[serde(rename = "nurture.offer")]
    NurtureOffer,
    #[serde(rename = "nurture.skipped")]
    NurtureSkipped,
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    #[serde(rename = "quest.awarded")]
    QuestAwarded,
}

impl FactKind {
    pub const ALL: [FactKind; 17] = [
        FactKind::WaitlistJoined,
        FactKind::WaitlistUpdated,
        FactKind::ViewerAttended,
        FactKind::DropScheduled,
        FactKind::DropLive,
        FactKind::DropClosed,
        FactKind::ClaimGranted,
        FactKind::ClaimRedeemed,
        FactKind::ClaimExpired,
        FactKind::CouponIssued,
        FactKind::ViewerErased,
        FactKind::FollowupConfirmation,
        FactKind::CouponRedeemed,
        FactKind::NurtureOffer,
        FactKind::NurtureSkipped,
        FactKind::EndpointDisabled,
        FactKind::QuestAwarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::WaitlistJoined => "waitlist.joined",
            FactKind::WaitlistUpdated => "waitlist.updated",
            FactKind::ViewerAttended => "viewer.attended",
            FactKind::DropScheduled => "drop.scheduled",
            FactKind::DropLive => "drop.live",
            FactKind::DropClosed => "drop.closed",
            FactKind::ClaimGranted => "claim.granted",
            FactKind::ClaimRedeemed => "claim.redeemed",
            FactKind::ClaimExpired => "claim.expired",
            FactKind::CouponIssued => "coupon.issued",
            FactKind::ViewerErased => "viewer.erased",
            FactKind::FollowupConfirmation => "followup.confirmation",
            FactKind::CouponRedeemed => "coupon.redeemed",
            FactKind::NurtureOffer => "nurture.offer",
            FactKind::NurtureSkipped => "nurture.skipped",
            FactKind::EndpointDisabled => "endpoint.disabled",
            FactKind::QuestAwarded => "quest.awarded",
        }
    }

    pub fn parse(s: &str) -> Option<FactKind> {
        FactKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An entry of a webhook endpoint's `events`: a fact kind, or `*` for every one. The JSON
/// Schema of those strings (the API's OpenAPI document); endpoints keep them as strings.
#[cfg(feature = "utoipa")]
#[derive(Debug)]
pub struct EventName;

#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for EventName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names = FactKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(std::iter::once("*"));
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(names))
            .description(Some("A fact kind, or `*` for every one"))
            .into()
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for EventName {}

impl std::fmt::Display for FactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One funnel fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Fact {
    /// Unique; a second write of the same id is ignored.
    pub id: String,
    pub kind: FactKind,
    pub maker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_id: Option<String>,
    /// When it happened (Unix ms, the hub's clock).
    pub at_ms: u64,
    /// What else there is to know, by kind (see `docs/ledger.md`).
    #[serde(default)]
    pub detail: Value,
}

impl Fact {
    pub(crate) fn new(
        kind: FactKind,
        key: &str,
        drop_id: &str,
        viewer_id: Option<&str>,
        at_ms: u64,
        detail: Value,
    ) -> Fact {
        Fact {
            id: format!("{kind}:{drop_id}:{key}"),
            kind,
            maker: DEFAULT_MAKER.into(),
            drop_id: Some(drop_id.into()),
            viewer_id: viewer_id.map(str::to_owned),
            at_ms,
            detail,
        }
    }

    /// The fact, as one of `maker`'s (each constructor makes the default maker's).
    #[must_use]
    pub fn by(mut self, maker: &str) -> Fact {
        maker.clone_into(&mut self.maker);
        self
    }

    /// A claim's facts as its state stands: granted, then redeemed or expired.
    pub fn of_claim(claim: &Claim, record: &DropRecord) -> Vec<Fact> {
        let drop = claim.drop_id.as_str();
        let code = claim.code.as_str();
        let viewer = Some(claim.viewer_id.as_str());
        let price = record.spec.item(&claim.sku).map_or(0, |i| i.price_cents);
        let currency = record.spec.currency.as_str();
        let mut facts = vec![Fact::new(
            FactKind::ClaimGranted,
            code,
            drop,
            viewer,
            claim.created_ms,
            json!({"code": code, "sku": claim.sku, "price_cents": price, "currency": currency,
                   "hold_until_ms": claim.hold_until_ms, "rank": claim.rank, "points": claim.points}),
        )];
        match (claim.state, claim.redeemed_ms, claim.expired_ms) {
            (ClaimState::Redeemed, Some(at), _) => facts.push(Fact::new(
                FactKind::ClaimRedeemed,
                code,
                drop,
                viewer,
                at,
                json!({"code": code, "sku": claim.sku, "amount_cents": price, "currency": currency}),
            )),
            (ClaimState::Expired, _, Some(at)) => facts.push(Fact::new(
                FactKind::ClaimExpired,
                code,
                drop,
                viewer,
                at,
                json!({"code": code, "sku": claim.sku}),
            )),
            _ => {}
        }
        facts.into_iter().map(|f| f.by(&record.maker)).collect()
    }

    /// A drop's facts as its timeline stands: scheduled, then live and closed once they
    /// happened (with the peak of viewers, when the caller knows it).
    pub fn of_drop(
        record: &DropRecord,
        view: &TimelineView,
        peak_viewers: Option<u64>,
    ) -> Vec<Fact> {
        let drop = record.id.as_str();
        let spec = &record.spec;
        let mut detail = json!({"title": spec.title, "kind": spec.kind, "currency": spec.currency,
               "starts_at": spec.starts_at, "early_access_s": spec.early_access_s,
               "follow_up": spec.follow_up, "nurture": spec.nurture,
               "skus": spec.inventory.iter().map(|i| &i.sku).collect::<Vec<_>>()});
        if let Some(recipe) = &record.recipe {
            detail["recipe"] = json!(recipe.id);
            detail["recipe_version"] = json!(recipe.version);
        }
        let mut facts = vec![Fact::new(
            FactKind::DropScheduled,
            "",
            drop,
            None,
            record.created_ms,
            detail,
        )];
        if let Some(at) = view.started_ms {
            facts.push(Fact::new(FactKind::DropLive, "", drop, None, at, json!({})));
        }
        if let Some(at) = view.closed_ms {
            facts.push(Fact::new(
                FactKind::DropClosed,
                "",
                drop,
                None,
                at,
                json!({"elapsed_s": view.elapsed_ms / 1000, "peak_viewers": peak_viewers}),
            ));
        }
        facts.into_iter().map(|f| f.by(&record.maker)).collect()
    }

    /// A viewer's first `hello` in a drop.
    pub fn attended(drop_id: &str, viewer_id: &str, at_ms: u64) -> Fact {
        Fact::new(
            FactKind::ViewerAttended,
            viewer_id,
            drop_id,
            Some(viewer_id),
            at_ms,
            json!({}),
        )
    }

    /// A personal code of a unique flash coupon, handed to a viewer.
    pub fn coupon_issued(
        drop_id: &str,
        coupon: &str,
        viewer_id: &str,
        code: &str,
        percent_off: u32,
        at_ms: u64,
    ) -> Fact {
        Fact::new(
            FactKind::CouponIssued,
            &format!("{coupon}:{viewer_id}"),
            drop_id,
            Some(viewer_id),
            at_ms,
            json!({"coupon": coupon, "code": code, "percent_off": percent_off}),
        )
    }

    /// A viewer earned a quest's points (once per quest and viewer).
    pub fn quest_awarded(
        drop_id: &str,
        quest: &str,
        kind: &str,
        viewer_id: &str,
        points: u32,
        at_ms: u64,
    ) -> Fact {
        Fact::new(
            FactKind::QuestAwarded,
            &format!("{quest}:{viewer_id}"),
            drop_id,
            Some(viewer_id),
            at_ms,
            json!({"quest": quest, "kind": kind, "points": points}),
        )
    }

    /// A viewer joined a drop's waitlist (once per viewer and drop).
    pub fn waitlist_joined(drop_id: &str, viewer_id: &str, at_ms: u64, detail: Value) -> Fact {
        Fact::new(
            FactKind::WaitlistJoined,
            viewer_id,
            drop_id,
            Some(viewer_id),
            at_ms,
            detail,
        )
    }

    /// A viewer changed its waitlist entry; `unique` tells this change from others (a ULID).
    pub fn waitlist_updated(
        drop_id: &str,
        viewer_id: &str,
        unique: &str,
        at_ms: u64,
        detail: Value,
    ) -> Fact {
        Fact::new(
            FactKind::WaitlistUpdated,
            &format!("{viewer_id}:{unique}"),
            drop_id,
            Some(viewer_id),
            at_ms,
            detail,
        )
    }

    /// The tombstone of an erased viewer: `tombstone` is the id its facts now carry.
    pub fn viewer_erased(tombstone: &str, at_ms: u64, counts: Value) -> Fact {
        Fact {
            id: format!("{}:{tombstone}", FactKind::ViewerErased),
            kind: FactKind::ViewerErased,
            maker: DEFAULT_MAKER.into(),
            drop_id: None,
            viewer_id: Some(tombstone.into()),
            at_ms,
            detail: counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for kind in FactKind::ALL {
            assert_eq!(FactKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(FactKind::parse("claim.stolen"), None);
    }

    #[test]
    fn derived_ids_name_what_they_describe() {
        let f = Fact::attended("mugs", "v1", 5);
        assert_eq!(f.id, "viewer.attended:mugs:v1");
        assert_eq!(
            Fact::attended("mugs", "v1", 9).id,
            f.id,
            "once per viewer and drop"
        );
    }
}
