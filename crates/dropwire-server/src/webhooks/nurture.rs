//! The nurture worker: every second, fires the timers that fell due — an offer, or a skip
//! (recorded) for a viewer who is erased or gave no marketing consent.

use std::time::Duration;

use crate::app::AppState;

const TICK: Duration = Duration::from_secs(1);
const LEASE: Duration = Duration::from_secs(60);

pub(crate) async fn nurture_forever(state: AppState) {
    let Some(funnel) = state.funnel.clone() else {
        return;
    };
    let ledger = funnel.ledger;
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = state.clock.now_ms();
        let due = match ledger
            .lease_timers(100, now, now + LEASE.as_millis() as u64)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read nurture timers; will retry");
                continue;
            }
        };
        for timer in due {
            let skipped = if timer.viewer_id.starts_with("erased-") {
                Some("erased")
            } else {
                match ledger.consented(&timer.maker, &timer.viewer_id).await {
                    Ok(true) => None,
                    Ok(false) => Some("no_consent"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read consent; the step waits");
                        continue;
                    }
                }
            };
            let outcome = skipped.unwrap_or("offered");
            match ledger.fire_timer(&timer, skipped, now).await {
                Ok(true) => state.metrics.nurture.with_label_values(&[outcome]).inc(),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, timer = %timer.id, "cannot fire a nurture timer")
                }
            }
        }
    }
}
