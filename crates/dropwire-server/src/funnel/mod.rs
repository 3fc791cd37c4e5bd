//! The hub's side of the funnel ledger ([`dropwire_funnel::Ledger`]): the [`Feed`] that
//! writes facts off the claim path, and the reconciliation that makes the ledger agree
//! with the store after a crash.
//!
//! Facts whose ids derive from the store's state (claims, drop states) may be fed many
//! times — by several nodes, by a retried rid, by the reconciliation — and are recorded
//! once. The feed is bounded: when it is full a batch is dropped and counted, and the
//! reconciliation (at start and every 30 s) writes what the store knows that the ledger
//! lacks, so every acknowledged claim reaches the ledger exactly once.

mod feed;
mod reconcile;

pub use feed::Feed;
pub(crate) use reconcile::reconcile_forever;
pub use reconcile::reconcile_once;

use dropwire_core::followup::{ClaimFollowUp, coupon_for};
use dropwire_core::{Claim, DropRecord, Fact};
use dropwire_funnel::Ledger;

use crate::auth::Keys;

/// The ledger and its feed, as the hub uses them.
#[derive(Debug, Clone)]
pub struct Funnel {
    pub ledger: Ledger,
    pub feed: Feed,
}

/// Every fact a claim implies as it stands: granted (then redeemed or expired) and, for a
/// drop with a follow-up, its confirmation with the claim's follow-up coupon.
pub(crate) fn claim_facts(keys: &Keys, claim: &Claim, record: &DropRecord) -> Vec<Fact> {
    let mut facts = Fact::of_claim(claim, record);
    let coupon = follow_up_of(keys, claim, record).and_then(|f| f.coupon);
    facts.extend(Fact::followup(claim, record, coupon.as_ref()));
    facts
}

/// What the viewer who claimed is shown of the follow-up, if the drop has one.
pub(crate) fn follow_up_of(
    keys: &Keys,
    claim: &Claim,
    record: &DropRecord,
) -> Option<ClaimFollowUp> {
    let follow_up = record.spec.follow_up.as_ref()?;
    Some(ClaimFollowUp {
        coupon: follow_up
            .coupon
            .as_ref()
            .map(|rule| coupon_for(claim, rule, keys.followup_code(&claim.code))),
        cross_sell: follow_up.cross_sell.clone(),
    })
}
