//! A viewer's requests that touch the store, claims and unique coupons, owned by the hub
//! from the frame to the answer: the frame's checks, the window from the timeline, the
//! store's allocation, the stock notice to every viewer, the metrics, and the facts for
//! the funnel ledger. The answer goes to that viewer alone.

use dropwire_core::claim::ClaimReason;
use dropwire_core::protocol::ServerMsg;
use dropwire_core::timeline::ClaimWindow;
use dropwire_core::{ClaimOutcome, Fact, QuestKind};
use dropwire_store::{ClaimRequest, CouponOutcome, CouponRequest};

use super::DropHub;
use crate::auth::Viewer;
use crate::funnel;

const MAX_RID: usize = 64;
const MAX_SKU: usize = 64;

fn refused(rid: String, reason: ClaimReason) -> ServerMsg {
    ServerMsg::ClaimResult {
        rid,
        ok: false,
        code: None,
        sku: None,
        hold_until_ms: None,
        reason: Some(reason.as_str().into()),
        opens_at_ms: None,
        follow_up: None,
    }
}

/// Whether a claim in `window` may be served (or entered in a draw) now.
fn refusal_free(window: ClaimWindow) -> bool {
    matches!(window, ClaimWindow::Open | ClaimWindow::EarlyAccess { .. })
}

fn bad_rid(rid: &str) -> Option<ServerMsg> {
    (rid.is_empty() || rid.len() > MAX_RID)
        .then(|| ServerMsg::error("bad_frame", format!("rid must be 1-{MAX_RID} characters")))
}

impl DropHub {
    /// `{"type":"claim","sku","rid"}`: window from the timeline, allocation from the store.
    pub async fn claim(&self, viewer: Option<&Viewer>, sku: String, rid: String) -> ServerMsg {
        self.claim_raised(viewer, None, sku, rid).await
    }

    /// [`claim`](Self::claim) by a viewer whose passes raise its per-viewer limit to
    /// `raised` (never below the SKU's own).
    pub async fn claim_raised(
        &self,
        viewer: Option<&Viewer>,
        raised: Option<u32>,
        sku: String,
        rid: String,
    ) -> ServerMsg {
        if let Some(err) = bad_rid(&rid) {
            return err;
        }
        if sku.len() > MAX_SKU {
            return ServerMsg::error(
                "bad_frame",
                format!("sku must be at most {MAX_SKU} characters"),
            );
        }
        let metrics = &self.ctx.metrics;
        let result = |label: &str| metrics.claims.with_label_values(&[label]).inc();
        let Some(viewer) = viewer else {
            result("unauthorized");
            return refused(rid, ClaimReason::Unauthorized);
        };
        let arrived = std::time::Instant::now();
        let mut now = self.now_ms();
        let mut window = self.window(&sku, now);
        if window == ClaimWindow::NotOpen {
            // This node may not have heard of a reveal another node logged: look again.
            self.recheck_log(arrived).await;
            now = self.now_ms();
            window = self.window(&sku, now);
        }
        // A shut window still goes to the store: a rid it decided before keeps its answer.
        // During early access the store grants the drop's segment alone.
        // Fair start: the draw this claim belongs to (the store enters it before then).
        let draw_at_ms = match refusal_free(window) {
            true => self.draw_at(&sku, now),
            false => None,
        };
        let (refusal, public_ms) = match window {
            ClaimWindow::Open => (None, None),
            ClaimWindow::EarlyAccess { public_ms } => (None, Some(public_ms)),
            ClaimWindow::NotOpen => (Some(ClaimReason::NotOpen), None),
            ClaimWindow::Closed => (Some(ClaimReason::Closed), None),
        };
        let req = ClaimRequest {
            drop_id: self.id.clone(),
            sku,
            viewer_id: viewer.id.clone(),
            handle: viewer.handle.clone(),
            rid: rid.clone(),
            now_ms: now,
            refusal,
            members_only: public_ms.is_some(),
            per_viewer_limit: raised,
            draw_at_ms,
            ticket: match draw_at_ms {
                Some(at) if now < at => dropwire_store::new_ticket().ok(),
                _ => None,
            },
        };
        let req_sku = req.sku.clone();
        let asked = std::time::Instant::now();
        let outcome = self.store().claim(req).await;
        metrics
            .claim_store_seconds
            .observe(asked.elapsed().as_secs_f64());
        if draw_at_ms.is_some_and(|at| now >= at) {
            // This claim may have held a draw: its grants change the stock.
            self.stock_changed();
        }
        match outcome {
            Ok(ClaimOutcome::Granted(claim)) => {
                result("ok");
                self.stock_changed();
                let quest_rid = format!("claim:{}", claim.code);
                self.quests_on(QuestKind::ClaimWithin, viewer, &quest_rid, claim.created_ms)
                    .await;
                let record = self.record();
                let keys = &self.ctx.keys;
                self.record_facts(funnel::claim_facts(keys, &claim, &record));
                let follow_up = funnel::follow_up_of(keys, &claim, &record).map(Box::new);
                ServerMsg::ClaimResult {
                    rid,
                    ok: true,
                    code: Some(claim.code.to_string()),
                    sku: Some(claim.sku),
                    hold_until_ms: Some(claim.hold_until_ms),
                    reason: None,
                    opens_at_ms: None,
                    follow_up,
                }
            }
            Ok(ClaimOutcome::Entered { draw_at_ms }) => {
                result("entered");
                ServerMsg::DrawEntered {
                    rid,
                    sku: req_sku,
                    draw_at_ms,
                }
            }
            Ok(ClaimOutcome::Refused(reason)) => {
                result(reason.as_str());
                let mut msg = refused(rid, reason);
                if let ServerMsg::ClaimResult { opens_at_ms, .. } = &mut msg {
                    // Outside the early-access segment: say when the public may claim.
                    *opens_at_ms = public_ms.filter(|_| reason == ClaimReason::NotOpen);
                }
                msg
            }
            Err(e) => match refusal {
                // The timeline's answer stands; only an earlier grant could have changed it.
                Some(reason) => {
                    result(reason.as_str());
                    refused(rid, reason)
                }
                None => {
                    tracing::warn!(error = %e, "claim failed in the store");
                    result("unavailable");
                    refused(rid, ClaimReason::Unavailable)
                }
            },
        }
    }

    /// `{"type":"coupon","rid"}`: a personal code of the unique flash coupon running now.
    pub async fn coupon(&self, viewer: Option<&Viewer>, rid: String) -> ServerMsg {
        if let Some(err) = bad_rid(&rid) {
            return err;
        }
        let no = |rid, reason: ClaimReason| ServerMsg::CouponResult {
            rid,
            ok: false,
            code: None,
            percent_off: None,
            expires_ms: None,
            reason: Some(reason.as_str().into()),
        };
        let Some(viewer) = viewer else {
            return no(rid, ClaimReason::Unauthorized);
        };
        let arrived = std::time::Instant::now();
        let running_at = |now| {
            let (_, view) = self.view_at(now);
            view.active_coupons(now)
                .filter(|(f, _)| f.cue.unique)
                .last()
                .map(|(fired, expires_ms)| (fired.clone(), expires_ms))
        };
        let mut now = self.now_ms();
        let mut running = running_at(now);
        if running.is_none() {
            // As for a claim: a coupon another node fired may not have been heard of yet.
            self.recheck_log(arrived).await;
            now = self.now_ms();
            running = running_at(now);
        }
        let Some((fired, expires_ms)) = running else {
            return no(rid, ClaimReason::NotOpen);
        };
        let coupon = fired.key.tag();
        let req = CouponRequest {
            drop_id: self.id.clone(),
            coupon: coupon.clone(),
            limit: fired.cue.limit.unwrap_or(0),
            viewer_id: viewer.id.clone(),
            now_ms: now,
        };
        match self.store().take_coupon(req).await {
            Ok(CouponOutcome::Granted { code }) => {
                let fact = Fact::coupon_issued(
                    self.id.as_str(),
                    &coupon,
                    &viewer.id,
                    &code,
                    fired.cue.percent_off.unwrap_or(0),
                    now,
                )
                .by(&self.record().maker);
                self.record_facts(vec![fact]);
                ServerMsg::CouponResult {
                    rid,
                    ok: true,
                    code: Some(code),
                    percent_off: fired.cue.percent_off,
                    expires_ms: Some(expires_ms),
                    reason: None,
                }
            }
            Ok(CouponOutcome::SoldOut) => no(rid, ClaimReason::SoldOut),
            Err(e) => {
                tracing::warn!(error = %e, "coupon failed in the store");
                no(rid, ClaimReason::Unavailable)
            }
        }
    }

    /// Hands facts to the funnel ledger's feed (a no-op without a ledger); never waits.
    pub(crate) fn record_facts(&self, facts: Vec<Fact>) {
        if let Some(feed) = &self.ctx.feed {
            feed.push(facts);
        }
    }
}
