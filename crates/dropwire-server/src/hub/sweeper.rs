//! The hold sweeper, one task per node: every `every` (a second by default) it expires the
//! holds past their deadline — their units go back to stock — tells each drop's hub, and
//! hands the expiries to the funnel ledger; every few sweeps it evicts the idle hubs
//! ([`Hubs::evict_idle`]). Safe on every node at once: the store expires each hold once.

use std::sync::Arc;
use std::time::Duration;

use dropwire_core::DropId;

use super::Hubs;
use crate::funnel;

/// Sweeps this often evict idle hubs.
const EVICT_EVERY_TICKS: u64 = 5;

impl Hubs {
    /// Sweeps every `every` until the server shuts down (module docs).
    pub async fn sweep_holds(self: Arc<Self>, every: Duration) {
        let mut shutdown = self.ctx.shutdown.clone();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            ticks += 1;
            self.expire_holds().await;
            if ticks.is_multiple_of(EVICT_EVERY_TICKS) {
                self.evict_idle();
            }
        }
    }

    /// Expires the holds due now and tells their drops' hubs.
    async fn expire_holds(&self) {
        let expired = match self.ctx.store.expire_due(self.ctx.clock.now_ms()).await {
            Ok(expired) => expired,
            Err(e) => {
                tracing::warn!(error = %e, "hold sweep failed; will retry");
                return;
            }
        };
        let mut drops: Vec<&DropId> = Vec::new();
        for claim in &expired {
            tracing::info!(drop = %claim.drop_id, code = %claim.code, "hold expired");
            if !drops.contains(&&claim.drop_id) {
                drops.push(&claim.drop_id);
            }
        }
        // The sweep that expired a hold may run on a node with no viewers of its drop:
        // that node still publishes the stock (no other node will).
        for drop in drops {
            if let Some(hub) = self.stock_changed(drop).await {
                let record = hub.record();
                let facts = expired
                    .iter()
                    .filter(|c| &c.drop_id == drop)
                    .flat_map(|c| funnel::claim_facts(&self.ctx.keys, c, &record))
                    .collect();
                hub.record_facts(facts);
            }
        }
    }
}
