//! The funnel KPIs, read from the rollups (`rollup.rs`). Every definition is in
//! `docs/metrics.md`; in short, for a drop D of a maker:
//!
//! - unique viewers: viewers with a `viewer.attended` in D; peak viewers: as the hub saw them;
//! - waitlist: viewers with a `waitlist.joined` in D; intent-to-buy: waitlisters who claimed
//!   in D ÷ waitlisters;
//! - claim rate: claimers ÷ unique viewers;
//! - conversion within 48 h: claims of D redeemed within 48 h of the grant ÷ claims of D;
//! - coupon uses: follow-up coupons of D redeemed;
//! - re-engagement: viewers of D who attended an earlier drop of the maker ÷ unique viewers
//!   (a drop's time is when it went live, else when it was scheduled);
//! - revenue: the amounts of D's redeemed claims;
//! - repeat within 90 days: buyers of D (a redeemed claim) who bought again — another drop's
//!   redeemed claim or a redeemed follow-up coupon — within 90 days after their first
//!   purchase in D ÷ buyers; incomplete while the window of D's last buyer is open;
//! - LTV by event type: buyers grouped by the kind of the drop of their first purchase; the
//!   mean of what each bought (claims and coupon orders) within 30, 90 and 365 days of that
//!   first purchase, over the buyers whose window has closed.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

const DAY_MS: u64 = 86_400_000;
pub(crate) const CONVERSION_WINDOW_MS: u64 = 2 * DAY_MS;
pub(crate) const REPEAT_WINDOW_MS: u64 = 90 * DAY_MS;

/// A share, or `None` when its denominator is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// One drop's KPIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct DropKpis {
    pub drop_id: String,
    pub title: Option<String>,
    pub kind: String,
    pub recipe: Option<String>,
    /// When it went live (else when it was scheduled), Unix ms.
    pub starts_ms: Option<u64>,
    pub unique_viewers: u64,
    pub peak_viewers: Option<u64>,
    pub waitlist: u64,
    pub waitlist_claimers: u64,
    pub intent_to_buy: Option<f64>,
    pub claimers: u64,
    pub claim_rate: Option<f64>,
    pub claims: u64,
    /// Claims redeemed (at any time).
    pub redeemed: u64,
    pub redeemed_48h: u64,
    pub conversion_48h: Option<f64>,
    pub coupon_uses: u64,
    pub re_engaged: u64,
    pub re_engagement: Option<f64>,
    pub revenue_cents: u64,
    pub buyers: u64,
    pub repeat_buyers_90d: u64,
    pub repeat_90d: Option<f64>,
    /// `false` while a buyer's 90 days are still running (the figure can still grow).
    pub repeat_90d_complete: bool,
}

impl DropKpis {
    /// No counts yet.
    pub fn new(drop_id: String) -> Self {
        DropKpis {
            drop_id,
            title: None,
            kind: "drop".into(),
            recipe: None,
            starts_ms: None,
            unique_viewers: 0,
            peak_viewers: None,
            waitlist: 0,
            waitlist_claimers: 0,
            intent_to_buy: None,
            claimers: 0,
            claim_rate: None,
            claims: 0,
            redeemed: 0,
            redeemed_48h: 0,
            conversion_48h: None,
            coupon_uses: 0,
            re_engaged: 0,
            re_engagement: None,
            revenue_cents: 0,
            buyers: 0,
            repeat_buyers_90d: 0,
            repeat_90d: None,
            repeat_90d_complete: true,
        }
    }

    /// Fills the ratios from the counts.
    pub fn finish(&mut self) {
        self.intent_to_buy = ratio(self.waitlist_claimers, self.waitlist);
        self.claim_rate = ratio(self.claimers, self.unique_viewers);
        self.conversion_48h = ratio(self.redeemed_48h, self.claims);
        self.re_engagement = ratio(self.re_engaged, self.unique_viewers);
        self.repeat_90d = ratio(self.repeat_buyers_90d, self.buyers);
    }

    /// Adds another drop's counts (for pooled figures of a group).
    pub fn add(&mut self, o: &DropKpis) {
        self.unique_viewers += o.unique_viewers;
        self.peak_viewers = match (self.peak_viewers, o.peak_viewers) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.waitlist += o.waitlist;
        self.waitlist_claimers += o.waitlist_claimers;
        self.claimers += o.claimers;
        self.claims += o.claims;
        self.redeemed += o.redeemed;
        self.redeemed_48h += o.redeemed_48h;
        self.coupon_uses += o.coupon_uses;
        self.re_engaged += o.re_engaged;
        self.revenue_cents += o.revenue_cents;
        self.buyers += o.buyers;
        self.repeat_buyers_90d += o.repeat_buyers_90d;
        self.repeat_90d_complete &= o.repeat_90d_complete;
        self.finish();
    }
}

/// Mean revenue per buyer within 30, 90 and 365 days of the first purchase, for the buyers
/// whose first purchase was in a drop of `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Ltv {
    pub kind: String,
    /// Buyers in the cohort.
    pub buyers: u64,
    pub windows: Vec<LtvWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct LtvWindow {
    pub days: u64,
    /// Buyers whose window has closed (the mean is over them).
    pub buyers: u64,
    pub revenue_cents: u64,
    pub ltv_cents: Option<f64>,
}

/// How many of a drop's buyers had bought again `day` days after their purchase in it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CurvePoint {
    pub day: u64,
    pub share: f64,
}

fn u(row: &sqlx::any::AnyRow, col: &str) -> Result<u64, FunnelError> {
    Ok(unms(row.try_get::<Option<i64>, _>(col)?.unwrap_or(0)))
}

impl Ledger {
    /// Viewers (by token, or by an anonymous visitor id) who attended a drop: survives
    /// restarts, and counts a returning viewer once.
    pub async fn unique_viewers(&self, drop_id: &str) -> Result<u64, FunnelError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM kpi_viewers WHERE drop_id = $1 AND attended_ms IS NOT NULL",
        )
        .bind(drop_id.to_owned())
        .fetch_one(&self.read)
        .await?;
        u(&row, "n")
    }

    /// The KPIs of every drop of `maker` (or of the `only` one), at `now_ms`, in the order
    /// the drops started.
    pub async fn drop_kpis(
        &self,
        maker: &str,
        now_ms: u64,
        only: Option<&str>,
    ) -> Result<Vec<DropKpis>, FunnelError> {
        // `AND drop_id = $n` when one drop is asked for.
        let one = |alias: &str, n: usize| {
            only.map(|_| format!(" AND {alias}drop_id = ${n}"))
                .unwrap_or_default()
        };
        let mut out: HashMap<String, DropKpis> = HashMap::new();
        let sql = format!(
            "SELECT drop_id, kind, recipe, title, COALESCE(live_ms, scheduled_ms) AS starts_ms, peak_viewers \
             FROM kpi_drops WHERE maker = $1{}",
            one("", 2)
        );
        let mut q = sqlx::query(&sql).bind(maker.to_owned());
        if let Some(d) = only {
            q = q.bind(d.to_owned());
        }
        let drops = q.fetch_all(&self.read).await?;
        for r in drops {
            let id: String = r.try_get("drop_id")?;
            let mut k = DropKpis::new(id.clone());
            k.kind = r.try_get("kind")?;
            k.recipe = r.try_get("recipe")?;
            k.title = r.try_get("title")?;
            k.starts_ms = r.try_get::<Option<i64>, _>("starts_ms")?.map(unms);
            k.peak_viewers = r.try_get::<Option<i64>, _>("peak_viewers")?.map(unms);
            out.insert(id, k);
        }
        let sql = format!(
            "SELECT v.drop_id, \
               CAST(SUM(CASE WHEN v.attended_ms IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS viewers, \
               CAST(SUM(CASE WHEN v.waitlisted_ms IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS waitlist, \
               CAST(SUM(CASE WHEN v.waitlisted_ms IS NOT NULL AND v.claimed_ms IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS waitlist_claimers, \
               CAST(SUM(CASE WHEN v.claimed_ms IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS claimers, \
               CAST(SUM(v.came_back) AS BIGINT) AS re_engaged \
             FROM kpi_viewers v WHERE v.maker = $1{} GROUP BY v.maker, v.drop_id",
            one("v.", 2)
        );
        let mut q = sqlx::query(&sql).bind(maker.to_owned());
        if let Some(d) = only {
            q = q.bind(d.to_owned());
        }
        let viewers = q.fetch_all(&self.read).await?;
        for r in viewers {
            if let Some(k) = out.get_mut(&r.try_get::<String, _>("drop_id")?) {
                k.unique_viewers = u(&r, "viewers")?;
                k.waitlist = u(&r, "waitlist")?;
                k.waitlist_claimers = u(&r, "waitlist_claimers")?;
                k.claimers = u(&r, "claimers")?;
                k.re_engaged = u(&r, "re_engaged")?;
            }
        }
        let sql = format!(
            "SELECT c.drop_id, CAST(COUNT(*) AS BIGINT) AS claims, \
               CAST(SUM(CASE WHEN c.redeemed_ms IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS redeemed, \
               CAST(SUM(CASE WHEN c.redeemed_ms IS NOT NULL AND c.redeemed_ms - c.granted_ms <= $2 THEN 1 ELSE 0 END) AS BIGINT) AS in_48h, \
               CAST(SUM(CASE WHEN c.redeemed_ms IS NOT NULL THEN COALESCE(c.amount_cents, 0) ELSE 0 END) AS BIGINT) AS revenue \
             FROM kpi_claims c JOIN kpi_drops d ON d.drop_id = c.drop_id \
             WHERE d.maker = $1 AND c.granted_ms IS NOT NULL{} GROUP BY c.drop_id",
            one("c.", 3)
        );
        let mut q = sqlx::query(&sql)
            .bind(maker.to_owned())
            .bind(ms(CONVERSION_WINDOW_MS));
        if let Some(d) = only {
            q = q.bind(d.to_owned());
        }
        let claims = q.fetch_all(&self.read).await?;
        for r in claims {
            if let Some(k) = out.get_mut(&r.try_get::<String, _>("drop_id")?) {
                k.claims = u(&r, "claims")?;
                k.redeemed = u(&r, "redeemed")?;
                k.redeemed_48h = u(&r, "in_48h")?;
                k.revenue_cents = u(&r, "revenue")?;
            }
        }
        let sql = format!(
            "SELECT drop_id, CAST(COUNT(*) AS BIGINT) AS uses FROM kpi_purchases \
             WHERE maker = $1 AND source = 'coupon'{} GROUP BY drop_id",
            one("", 2)
        );
        let mut q = sqlx::query(&sql).bind(maker.to_owned());
        if let Some(d) = only {
            q = q.bind(d.to_owned());
        }
        let coupons = q.fetch_all(&self.read).await?;
        for r in coupons {
            let id: Option<String> = r.try_get("drop_id")?;
            if let Some(k) = id.and_then(|id| out.get_mut(&id)) {
                k.coupon_uses = u(&r, "uses")?;
            }
        }
        let sql = format!(
            "SELECT v.drop_id, CAST(COUNT(*) AS BIGINT) AS buyers, MAX(v.bought_ms) AS last_bought, \
               CAST(SUM(CASE WHEN EXISTS (SELECT 1 FROM kpi_purchases p WHERE p.viewer_id = v.viewer_id AND p.maker = v.maker \
                   AND (p.source = 'coupon' OR p.drop_id <> v.drop_id) \
                   AND p.at_ms > v.bought_ms AND p.at_ms <= v.bought_ms + $2) THEN 1 ELSE 0 END) AS BIGINT) AS repeaters \
             FROM kpi_viewers v WHERE v.maker = $1 AND v.bought_ms IS NOT NULL{} GROUP BY v.drop_id",
            one("v.", 3)
        );
        let mut q = sqlx::query(&sql)
            .bind(maker.to_owned())
            .bind(ms(REPEAT_WINDOW_MS));
        if let Some(d) = only {
            q = q.bind(d.to_owned());
        }
        let repeat = q.fetch_all(&self.read).await?;
        for r in repeat {
            if let Some(k) = out.get_mut(&r.try_get::<String, _>("drop_id")?) {
                k.buyers = u(&r, "buyers")?;
                k.repeat_buyers_90d = u(&r, "repeaters")?;
                k.repeat_90d_complete = u(&r, "last_bought")? + REPEAT_WINDOW_MS <= now_ms;
            }
        }
        let mut all: Vec<DropKpis> = out.into_values().collect();
        for k in &mut all {
            k.finish();
        }
        all.sort_by(|a, b| {
            a.starts_ms
                .cmp(&b.starts_ms)
                .then_with(|| a.drop_id.cmp(&b.drop_id))
        });
        Ok(all)
    }

    /// The 90-day repeat curve of one drop: for each day 0–90, the share of its buyers who
    /// had bought again within that many days.
    pub async fn repeat_curve(
        &self,
        maker: &str,
        drop_id: &str,
    ) -> Result<Vec<CurvePoint>, FunnelError> {
        let rows = sqlx::query(
            "SELECT v.viewer_id, MIN(p.at_ms - v.bought_ms) AS after_ms FROM kpi_viewers v \
             LEFT JOIN kpi_purchases p ON p.viewer_id = v.viewer_id AND p.maker = v.maker \
               AND (p.source = 'coupon' OR p.drop_id <> v.drop_id) \
               AND p.at_ms > v.bought_ms AND p.at_ms <= v.bought_ms + $3 \
             WHERE v.maker = $1 AND v.drop_id = $2 AND v.bought_ms IS NOT NULL GROUP BY v.viewer_id",
        )
        .bind(maker.to_owned())
        .bind(drop_id.to_owned())
        .bind(ms(REPEAT_WINDOW_MS))
        .fetch_all(&self.read)
        .await?;
        let buyers = rows.len() as u64;
        let mut days = vec![0u64; 91];
        for r in &rows {
            if let Some(after) = r.try_get::<Option<i64>, _>("after_ms")? {
                // Bought again within `d` days when after ≤ d days; the first such d counts it.
                let d = unms(after).div_ceil(DAY_MS).min(90) as usize;
                days[d] += 1;
            }
        }
        let mut seen = 0;
        Ok((0..=90u64)
            .map(|day| {
                seen += days[day as usize];
                CurvePoint {
                    day,
                    share: ratio(seen, buyers).unwrap_or(0.0),
                }
            })
            .collect())
    }

    /// LTV by event type (see the module doc), at `now_ms`.
    pub async fn ltv_by_kind(&self, maker: &str, now_ms: u64) -> Result<Vec<Ltv>, FunnelError> {
        let windows = [30u64, 90, 365];
        let mut cols = String::new();
        for (i, d) in windows.iter().enumerate() {
            let w = d * DAY_MS;
            cols.push_str(&format!(
                ", COUNT(DISTINCT CASE WHEN b.first_ms + {w} <= $2 THEN b.viewer_id END) AS buyers{i}, \
                 CAST(SUM(CASE WHEN b.first_ms + {w} <= $2 AND p.at_ms <= b.first_ms + {w} THEN p.amount_cents ELSE 0 END) AS BIGINT) AS revenue{i}"
            ));
        }
        let rows = sqlx::query(&format!(
            "WITH firsts AS (SELECT viewer_id, MIN(at_ms) AS first_ms FROM kpi_purchases WHERE maker = $1 GROUP BY viewer_id), \
             buyers AS (SELECT f.viewer_id, f.first_ms, MIN(COALESCE(d.kind, 'drop')) AS kind FROM firsts f \
                        JOIN kpi_purchases p ON p.viewer_id = f.viewer_id AND p.at_ms = f.first_ms AND p.maker = $1 \
                        LEFT JOIN kpi_drops d ON d.drop_id = p.drop_id GROUP BY f.viewer_id, f.first_ms) \
             SELECT b.kind, COUNT(DISTINCT b.viewer_id) AS buyers{cols} \
             FROM buyers b JOIN kpi_purchases p ON p.viewer_id = b.viewer_id AND p.maker = $1 GROUP BY b.kind ORDER BY b.kind"
        ))
        .bind(maker.to_owned())
        .bind(ms(now_ms))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Ltv {
                    kind: r.try_get("kind")?,
                    buyers: u(r, "buyers")?,
                    windows: windows
                        .iter()
                        .enumerate()
                        .map(|(i, days)| {
                            let buyers = u(r, &format!("buyers{i}"))?;
                            let revenue_cents = u(r, &format!("revenue{i}"))?;
                            Ok(LtvWindow {
                                days: *days,
                                buyers,
                                revenue_cents,
                                ltv_cents: ratio(revenue_cents, buyers),
                            })
                        })
                        .collect::<Result<_, FunnelError>>()?,
                })
            })
            .collect()
    }
}
