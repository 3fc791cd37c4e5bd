//! [`Hubs`]: the hubs loaded on this node, one per drop, each started on first use and
//! evicted once it is idle, so what a node holds and does follows the drops in use, not
//! every drop ever made.
//!
//! A hub is *idle* when its drop is closed, no viewer of it is connected here, and nothing
//! has used it for the grace (`--hub-idle-grace-s`). [`Hubs::evict_idle`] (run by the
//! sweeper, [`Hubs::sweep_holds`], every few seconds) then takes it out of the map and
//! retires it: its task ends (with a bus: the leaving viewer report, the relay's tasks, the
//! drop's bus subscription).
//! The next request or viewer for the drop loads a new hub from the store, as on first use:
//! a closed drop still serves its snapshot and stats.
//!
//! A hub is taken out only while nothing but its own tasks holds it (a connection or a
//! request in progress holds an `Arc` of it), checked under the map's lock; [`Hubs::get`]
//! checks under the same lock that the hub it hands out is still in the map, so no one is
//! ever handed a retired hub.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dropwire_core::{DropId, DropState};
use dropwire_store::{Bus, StoreError};
use tokio::sync::OnceCell;

use super::{DropHub, HubCtx};
use crate::metrics::Metrics;

type Cell = Arc<OnceCell<Arc<DropHub>>>;

/// Every loaded drop's hub on this node.
#[derive(Debug)]
pub struct Hubs {
    pub(super) ctx: HubCtx,
    /// One cell per drop: concurrent first uses wait on the same load, so a drop never
    /// gets two hubs, and no lock is held while loading.
    map: Mutex<HashMap<DropId, Cell>>,
    /// How long a closed drop's hub stays without viewers or use.
    grace: Duration,
}

impl Hubs {
    pub fn new(ctx: HubCtx, grace: Duration) -> Hubs {
        Hubs {
            ctx,
            map: Mutex::new(HashMap::new()),
            grace,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<DropId, Cell>> {
        crate::sync::lock(&self.map)
    }

    /// The hub of a drop, started on first use (or again after it was evicted); `None` if
    /// the drop does not exist.
    pub async fn get(&self, id: &DropId) -> Result<Option<Arc<DropHub>>, StoreError> {
        loop {
            let cell = Arc::clone(self.map().entry(id.clone()).or_default());
            let loaded = cell
                .get_or_try_init(|| async {
                    let record = self
                        .ctx
                        .store
                        .drop_record(id)
                        .await
                        .map_err(Some)?
                        .ok_or(None)?;
                    DropHub::start(self.ctx.clone(), record).await.map_err(Some)
                })
                .await;
            match loaded {
                Ok(hub) => {
                    let hub = Arc::clone(hub);
                    // Evicted between the lookup and now: load it again.
                    if self.map().get(id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                        hub.touch();
                        return Ok(Some(hub));
                    }
                }
                Err(missing_or_failed) => {
                    // Forget the empty cell, so unknown ids cost no memory.
                    let mut map = self.map();
                    if map
                        .get(id)
                        .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
                    {
                        map.remove(id);
                    }
                    return missing_or_failed.map_or(Ok(None), Err);
                }
            }
        }
    }

    /// The hubs loaded now.
    fn loaded(&self) -> Vec<Arc<DropHub>> {
        self.map()
            .values()
            .filter_map(|c| c.get().cloned())
            .collect()
    }

    /// Whether this node holds the drop's hub now.
    pub fn is_loaded(&self, id: &DropId) -> bool {
        self.map().get(id).is_some_and(|c| c.initialized())
    }

    /// How many hubs this node holds.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Retires every idle hub (module docs); returns how many.
    pub fn evict_idle(&self) -> usize {
        let now = tokio::time::Instant::now();
        let evicted: Vec<Arc<DropHub>> = {
            let mut map = self.map();
            let idle: Vec<DropId> = map
                .iter()
                .filter(|(_, cell)| cell.get().is_some_and(|hub| hub.is_idle(now, self.grace)))
                .map(|(id, _)| id.clone())
                .collect();
            idle.iter()
                .filter_map(|id| map.remove(id))
                .filter_map(|cell| cell.get().cloned())
                .collect()
        };
        for hub in &evicted {
            tracing::debug!(drop = %hub.id, "hub idle: evicted");
            hub.retire();
        }
        evicted.len()
    }

    /// Sets the per-drop gauges (stock left, holds, this node's viewers) of every drop
    /// loaded here and not closed; closed or unloaded drops leave the gauges. One store
    /// read per such drop, at each scrape.
    pub async fn gauge_drops(&self, metrics: &Metrics) {
        let hubs = self.loaded();
        metrics.stock_left.reset();
        metrics.holds.reset();
        metrics.drop_viewers.reset();
        metrics
            .hubs
            .set(i64::try_from(hubs.len()).unwrap_or(i64::MAX));
        for hub in hubs {
            let (_, view) = hub.view_at(hub.now_ms());
            if view.state == DropState::Closed {
                continue;
            }
            let id = hub.id.as_str();
            let local = hub.local_viewers();
            metrics
                .drop_viewers
                .with_label_values(&[id])
                .set(gauge(local));
            let read =
                tokio::time::timeout(Duration::from_secs(1), self.ctx.store.figures(&hub.id));
            if let Ok(Ok(figures)) = read.await {
                metrics
                    .holds
                    .with_label_values(&[id])
                    .set(gauge(figures.held));
                for item in figures.stock {
                    metrics
                        .stock_left
                        .with_label_values(&[id, &item.sku])
                        .set(i64::from(item.left));
                }
            }
        }
    }

    /// The cross-node bus, when several nodes serve the drops.
    pub fn bus(&self) -> Option<&Arc<dyn Bus>> {
        self.ctx.bus.as_ref()
    }

    /// Tells a drop's hub that its stock changed, loading the hub on this node if needed:
    /// with several nodes, the node that expired a hold may be the only one that knows.
    pub async fn stock_changed(&self, id: &DropId) -> Option<Arc<DropHub>> {
        match self.get(id).await {
            Ok(Some(hub)) => {
                hub.stock_changed();
                Some(hub)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(drop = %id, error = %e, "cannot load the hub to publish stock");
                None
            }
        }
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
