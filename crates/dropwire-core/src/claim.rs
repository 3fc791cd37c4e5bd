//! Claims, their outcomes, and the early-bird leaderboard.
//!
//! # Scoring
//!
//! The n-th successful claim of a SKU (0-based, in the order the store granted them)
//! earns `max(10, 100 - 5·n)` points ([`FIRST_CLAIM_POINTS`], [`POINTS_PER_RANK`],
//! [`FEWEST_CLAIM_POINTS`]): the first claimer of a SKU gets 100, the 19th and later get
//! 10. A viewer's points add up over SKUs and quests. The board orders by points (high
//! first), then by who scored first, then by handle, and shows the top
//! [`LEADERBOARD_SIZE`].
//!
//! The board counts points for items held or bought: when a hold expires, its points leave
//! the viewer's score (a claim after it earns its own rank's points, not added to the
//! expired one's), and a viewer left with no points is not on the board.
//!
//! # One source for both stores
//!
//! These constants are the only place the rules are written: the embedded store calls
//! [`claim_points`] and [`leaderboard`], and the Redis store renders them into its Lua
//! scripts when it connects. The store conformance suite checks both against them.

use serde::{Deserialize, Serialize};

use crate::ids::{ClaimCode, DropId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    Held,
    Redeemed,
    Expired,
}

impl ClaimState {
    /// Its name on the wire (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Held => "held",
            ClaimState::Redeemed => "redeemed",
            ClaimState::Expired => "expired",
        }
    }
}

/// One granted claim: a hold on one unit until `hold_until_ms`, then a sale or an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub code: ClaimCode,
    pub drop_id: DropId,
    pub sku: String,
    pub viewer_id: String,
    pub handle: String,
    pub rid: String,
    pub state: ClaimState,
    pub created_ms: u64,
    pub hold_until_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeemed_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_ms: Option<u64>,
    /// 0-based order of this claim among the SKU's claims.
    pub rank: u32,
    pub points: u32,
}

/// Why a claim (or a coupon request) was refused. The names are the API's `reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimReason {
    SoldOut,
    LimitReached,
    NotOpen,
    Closed,
    Unauthorized,
    RateLimited,
    Unavailable,
}

impl ClaimReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimReason::SoldOut => "sold_out",
            ClaimReason::LimitReached => "limit_reached",
            ClaimReason::NotOpen => "not_open",
            ClaimReason::Closed => "closed",
            ClaimReason::Unauthorized => "unauthorized",
            ClaimReason::RateLimited => "rate_limited",
            ClaimReason::Unavailable => "unavailable",
        }
    }
}

/// What the store answers to a claim.
// Returned once per claim and matched at once: boxing the claim would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimOutcome {
    Granted(Claim),
    Refused(ClaimReason),
    /// Fair start: the claim is entered in the SKU's draw, decided at `draw_at_ms`; ask
    /// again with the same rid then for the answer.
    Entered {
        draw_at_ms: u64,
    },
}

/// Points of the first claim of a SKU.
pub const FIRST_CLAIM_POINTS: u32 = 100;
/// Points fewer for each claim of the SKU granted before.
pub const POINTS_PER_RANK: u32 = 5;
/// The fewest points a claim earns, however late.
pub const FEWEST_CLAIM_POINTS: u32 = 10;
/// How many viewers the leaderboard shows.
pub const LEADERBOARD_SIZE: usize = 10;
/// Refused request ids a store remembers per viewer and drop, the latest ones: a retry
/// of one of them gets the same answer (granted rids are kept with their claims).
pub const REFUSED_RIDS_KEPT: usize = 32;

/// Points for the claim of rank `rank` (0-based) within its SKU. See the module doc.
pub fn claim_points(rank: u32) -> u32 {
    FIRST_CLAIM_POINTS
        .saturating_sub(rank.saturating_mul(POINTS_PER_RANK))
        .max(FEWEST_CLAIM_POINTS)
}

/// One viewer's running score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub viewer_id: String,
    pub handle: String,
    pub points: u32,
    /// When the viewer first scored (Unix ms); earlier wins a tie.
    pub first_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct LeaderEntry {
    pub rank: u32,
    pub handle: String,
    pub points: u32,
}

/// The top `n` of `scores`, ranked by the rule in the module doc.
pub fn leaderboard<'a>(scores: impl IntoIterator<Item = &'a Score>, n: usize) -> Vec<LeaderEntry> {
    let mut all: Vec<&Score> = scores.into_iter().filter(|s| s.points > 0).collect();
    all.sort_by(|a, b| {
        b.points
            .cmp(&a.points)
            .then(a.first_ms.cmp(&b.first_ms))
            .then_with(|| a.handle.cmp(&b.handle))
            .then_with(|| a.viewer_id.cmp(&b.viewer_id))
    });
    all.into_iter()
        .take(n)
        .zip(1..)
        .map(|(s, rank)| LeaderEntry {
            rank,
            handle: s.handle.clone(),
            points: s.points,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_state_names_itself_as_it_is_serialized() {
        for state in [ClaimState::Held, ClaimState::Redeemed, ClaimState::Expired] {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
    }

    #[test]
    fn earlier_claims_earn_more() {
        assert_eq!(claim_points(0), 100);
        assert_eq!(claim_points(1), 95);
        assert_eq!(claim_points(18), 10);
        assert_eq!(claim_points(u32::MAX), 10);
    }

    #[test]
    fn the_api_documents_these_rules() {
        let api = include_str!("../../../docs/api.md");
        for said in [
            format!("(top {LEADERBOARD_SIZE})"),
            format!("`max({FEWEST_CLAIM_POINTS}, {FIRST_CLAIM_POINTS} − {POINTS_PER_RANK}·n)`"),
            format!("last {REFUSED_RIDS_KEPT} refusals per drop"),
        ] {
            assert!(api.contains(&said), "docs/api.md does not say {said}");
        }
    }

    #[test]
    fn ties_go_to_who_scored_first() {
        let s = |v: &str, p, t| Score {
            viewer_id: v.into(),
            handle: v.into(),
            points: p,
            first_ms: t,
        };
        let scores = [
            s("b", 100, 5),
            s("a", 100, 9),
            s("c", 150, 20),
            s("d", 10, 1),
        ];
        let top = leaderboard(&scores, 3);
        let names: Vec<_> = top.iter().map(|e| (e.rank, e.handle.as_str())).collect();
        assert_eq!(names, [(1, "c"), (2, "b"), (3, "a")]);
    }
}
