//! A viewer's requests that touch the store: claims and unique coupons. The answers go to
//! that viewer alone.

use std::sync::Arc;

use dropwire_core::claim::ClaimReason;
use dropwire_core::protocol::ServerMsg;
use dropwire_core::timeline::{ClaimWindow, CueKey};
use dropwire_core::{ClaimOutcome, Fact};
use dropwire_store::{ClaimRequest, CouponOutcome, CouponRequest};

use crate::app::AppState;
use crate::auth::Viewer;
use crate::hub::DropHub;

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

fn bad_rid(rid: &str) -> Option<ServerMsg> {
    (rid.is_empty() || rid.len() > MAX_RID)
        .then(|| ServerMsg::error("bad_frame", format!("rid must be 1-{MAX_RID} characters")))
}

/// `{"type":"claim","sku","rid"}`: window from the timeline, allocation from the store.
pub async fn claim(
    state: &AppState,
    hub: &Arc<DropHub>,
    viewer: Option<&Viewer>,
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
    let result = |label: &str| state.metrics.claims.with_label_values(&[label]).inc();
    let Some(viewer) = viewer else {
        result("unauthorized");
        return refused(rid, ClaimReason::Unauthorized);
    };
    let now = hub.now_ms();
    // A shut window still goes to the store: a rid it decided before keeps its answer.
    // During early access the store grants the drop's segment alone.
    let (refusal, public_ms) = match hub.window(&sku, now) {
        ClaimWindow::Open => (None, None),
        ClaimWindow::EarlyAccess { public_ms } => (None, Some(public_ms)),
        ClaimWindow::NotOpen => (Some(ClaimReason::NotOpen), None),
        ClaimWindow::Closed => (Some(ClaimReason::Closed), None),
    };
    let req = ClaimRequest {
        drop_id: hub.id.clone(),
        sku,
        viewer_id: viewer.id.clone(),
        handle: viewer.handle.clone(),
        rid: rid.clone(),
        now_ms: now,
        refusal,
        members_only: public_ms.is_some(),
    };
    let asked = std::time::Instant::now();
    let outcome = hub.store().claim(req).await;
    state
        .metrics
        .claim_store_seconds
        .observe(asked.elapsed().as_secs_f64());
    match outcome {
        Ok(ClaimOutcome::Granted(claim)) => {
            result("ok");
            hub.stock_changed();
            let record = hub.record();
            state.record(crate::funnel::claim_facts(&state.keys, &claim, &record));
            let follow_up = crate::funnel::follow_up_of(&state.keys, &claim, &record).map(Box::new);
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
pub async fn coupon(
    state: &AppState,
    hub: &Arc<DropHub>,
    viewer: Option<&Viewer>,
    rid: String,
) -> ServerMsg {
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
    let now = hub.now_ms();
    let (_, view) = hub.view_at(now);
    let running = view
        .active_coupons(now)
        .filter(|(f, _)| f.cue.unique)
        .last();
    let Some((fired, expires_ms)) = running else {
        return no(rid, ClaimReason::NotOpen);
    };
    let coupon = match fired.key {
        CueKey::Script(i) => format!("s{i}"),
        CueKey::AdHoc(p) => format!("a{p}"),
    };
    let req = CouponRequest {
        drop_id: hub.id.clone(),
        coupon: coupon.clone(),
        limit: fired.cue.limit.unwrap_or(0),
        viewer_id: viewer.id.clone(),
        now_ms: now,
    };
    match hub.store().take_coupon(req).await {
        Ok(CouponOutcome::Granted { code }) => {
            let fact = Fact::coupon_issued(
                hub.id.as_str(),
                &coupon,
                &viewer.id,
                &code,
                fired.cue.percent_off.unwrap_or(0),
                now,
            );
            state.record(vec![fact]);
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
