//! A seeded synthetic history of a maker's drops, for the KPI reference test and the
//! analytics benchmark: drops of three kinds a few days apart, and per drop a waitlist,
//! attendance, claims, redemptions (some after 48 h, some never) and follow-up coupon
//! orders weeks later. The same seed gives the same facts.

use std::collections::BTreeSet;

use dropwire_core::{Fact, FactKind};
use serde_json::json;

/// The shape of a history.
#[derive(Debug, Clone, Copy)]
pub struct HistorySpec {
    pub seed: u64,
    pub drops: usize,
    pub viewers: usize,
    pub attend_per_drop: usize,
    pub waitlist_per_drop: usize,
    pub claims_per_drop: usize,
    /// The first drop goes live then; the others follow every 3 days.
    pub t0_ms: u64,
}

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
pub const KINDS: [&str; 3] = ["drop", "workshop", "demo"];

/// splitmix64: small, seeded, good enough for test data.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `k` distinct numbers below `n`, in increasing order.
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut picked = BTreeSet::new();
        while picked.len() < k.min(n) {
            picked.insert(self.below(n as u64) as usize);
        }
        picked.into_iter().collect()
    }
}

fn fact(
    kind: FactKind,
    id: String,
    drop: &str,
    viewer: Option<&str>,
    at: u64,
    detail: serde_json::Value,
) -> Fact {
    Fact {
        id,
        kind,
        maker: "default".into(),
        drop_id: Some(drop.into()),
        viewer_id: viewer.map(str::to_owned),
        at_ms: at,
        detail,
    }
}

/// The history's facts, drop by drop.
pub fn history(spec: &HistorySpec) -> Vec<Fact> {
    let mut rng = Rng(spec.seed);
    let mut facts = Vec::new();
    let viewer = |i: usize| format!("v{i:06}");
    for d in 0..spec.drops {
        let drop = format!("hist-{d:04}");
        let live = spec.t0_ms + d as u64 * 3 * DAY;
        let kind = KINDS[d % KINDS.len()];
        facts.push(fact(
            FactKind::DropScheduled,
            format!("drop.scheduled:{drop}:"),
            &drop,
            None,
            live - 7 * DAY,
            json!({"title": format!("Drop {d}"), "kind": kind, "currency": "EUR"}),
        ));
        facts.push(fact(
            FactKind::DropLive,
            format!("drop.live:{drop}:"),
            &drop,
            None,
            live,
            json!({}),
        ));
        facts.push(fact(
            FactKind::DropClosed,
            format!("drop.closed:{drop}:"),
            &drop,
            None,
            live + 600_000,
            json!({"peak_viewers": spec.attend_per_drop as u64 / 2 + rng.below(100)}),
        ));
        let waitlist = rng.sample(spec.viewers, spec.waitlist_per_drop);
        for &w in &waitlist {
            let v = viewer(w);
            facts.push(fact(
                FactKind::WaitlistJoined,
                format!("waitlist.joined:{drop}:{v}"),
                &drop,
                Some(&v),
                live - DAY - rng.below(5 * DAY),
                json!({"intent": {"items": []}}),
            ));
        }
        // Half the waitlist comes; the rest of the audience is drawn from everyone.
        let mut attend: BTreeSet<usize> = waitlist
            .iter()
            .copied()
            .filter(|_| rng.below(2) == 0)
            .collect();
        while attend.len() < spec.attend_per_drop.min(spec.viewers) {
            attend.insert(rng.below(spec.viewers as u64) as usize);
        }
        let attend: Vec<usize> = attend.into_iter().collect();
        for &a in &attend {
            let v = viewer(a);
            facts.push(fact(
                FactKind::ViewerAttended,
                format!("viewer.attended:{drop}:{v}"),
                &drop,
                Some(&v),
                live + rng.below(600_000),
                json!({}),
            ));
        }
        // Claimers: attendees, a waitlisted one more likely; a few claim twice.
        let mut claims = 0;
        while claims < spec.claims_per_drop {
            let a = attend[rng.below(attend.len() as u64) as usize];
            let waitlisted = waitlist.binary_search(&a).is_ok();
            if !waitlisted && rng.below(3) == 0 {
                continue;
            }
            let v = viewer(a);
            let code = format!("C{d:04}{claims:05}");
            let granted = live + 30_000 + rng.below(500_000);
            let price = 2000 + rng.below(4000);
            facts.push(fact(
                FactKind::ClaimGranted,
                format!("claim.granted:{drop}:{code}"),
                &drop,
                Some(&v),
                granted,
                json!({"code": code, "sku": "mug", "price_cents": price, "currency": "EUR"}),
            ));
            if rng.below(10) < 7 {
                let redeemed = granted + rng.below(96 * HOUR);
                facts.push(fact(
                    FactKind::ClaimRedeemed,
                    format!("claim.redeemed:{drop}:{code}"),
                    &drop,
                    Some(&v),
                    redeemed,
                    json!({"code": code, "sku": "mug", "amount_cents": price, "currency": "EUR"}),
                ));
                if rng.below(4) == 0 {
                    let coupon = format!("FU{d:04}{claims:05}");
                    facts.push(fact(FactKind::CouponRedeemed, format!("coupon.redeemed:{drop}:{coupon}"), &drop, Some(&v),
                        redeemed + DAY + rng.below(120 * DAY),
                        json!({"code": coupon, "amount_cents": 1000 + rng.below(5000), "currency": "EUR"})));
                }
            } else if rng.below(2) == 0 {
                facts.push(fact(
                    FactKind::ClaimExpired,
                    format!("claim.expired:{drop}:{code}"),
                    &drop,
                    Some(&v),
                    granted + 900_000,
                    json!({"code": code, "sku": "mug"}),
                ));
            }
            claims += 1;
        }
    }
    facts
}
