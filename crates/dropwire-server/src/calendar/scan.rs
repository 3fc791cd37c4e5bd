//! With many hub nodes (a bus), each node looks at the open drops every
//! `--schedule-scan-s` and loads the hub of each drop due to start by itself soon, so that
//! a drop made on a node that then went away still starts on time: its hub's task starts
//! it ([`crate::hub::DropHub::start_on_schedule`]), and where several nodes do, the
//! store's conditional append keeps one start.
//!
//! One node alone needs no scan: it loads every open drop at start-up and makes the others
//! itself (a hub is loaded as its drop is made, and a scheduled drop's hub is never evicted).

use std::time::Duration;

use dropwire_core::schedule::AutoStart;

use crate::app::AppState;
use crate::hub::raised;

/// Scans every `every`, while the node has a bus, until shutdown.
pub async fn forever(state: AppState, every: Duration) {
    if state.hubs.bus().is_none() {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = raised(&mut shutdown) => return,
        }
        if let Err(e) = once(&state, every).await {
            tracing::warn!(error = %e, "cannot scan for scheduled drops; will retry");
        }
    }
}

/// Loads the hub of every open drop that starts by itself within two scans (or is due).
async fn once(state: &AppState, every: Duration) -> Result<(), dropwire_store::StoreError> {
    let now = state.clock.now_ms();
    let soon = now.saturating_add(2 * u64::try_from(every.as_millis()).unwrap_or(u64::MAX));
    for record in state.store.open_drops().await? {
        let due = match AutoStart::of(&record, now) {
            AutoStart::Due => true,
            AutoStart::Waiting { at_ms } => at_ms <= soon,
            AutoStart::Manual | AutoStart::Missed => false,
        };
        if due {
            state.hubs.get(&record.id).await?;
        }
    }
    Ok(())
}
