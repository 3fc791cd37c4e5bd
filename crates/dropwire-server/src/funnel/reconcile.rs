//! Reconciliation: the ledger made to agree with the store. For every drop not yet settled
//! it writes the facts the store's state implies (the drop's states, each claim granted,
//! redeemed or expired; ids already there are skipped), and admits the drop's waitlist to
//! its early-access segment. A closed drop with no claim still held is settled: it is
//! marked in the ledger and never read again, so the work does not grow with past drops.
//!
//! Most passes walk only the drops the store lists as open ([`Store::open_drops`]: on Redis
//! the drops not yet retired, so the open ones and the closed ones with holds); one pass in
//! [`FULL_EVERY`], and the first, walks every drop, in case a drop was retired in the store
//! between two passes with facts the feed had lost.

use std::collections::HashSet;
use std::time::Duration;

use dropwire_core::{ClaimState, DropState, Fact, TimelineView};
use dropwire_funnel::{FunnelError, Ledger};
use dropwire_store::{Store, StoreError};

use crate::app::AppState;
use crate::auth::Keys;

/// How often the ledger is reconciled with the store.
pub(crate) const EVERY: Duration = Duration::from_secs(30);
/// Facts written per transaction while reconciling.
const CHUNK: usize = 1000;
/// One pass in this many walks every drop (every 10 minutes), the others the open ones.
pub(crate) const FULL_EVERY: u64 = 20;

/// What one pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Drops looked at.
    pub drops: usize,
    /// Facts the ledger lacked and now has.
    pub written: u64,
    /// Drops settled in this pass.
    pub settled: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] FunnelError),
}

/// One pass over every drop not in `settled` (which it extends; when empty, it is first
/// filled with the drops the ledger has settled).
pub async fn reconcile_once(
    store: &dyn Store,
    ledger: &Ledger,
    keys: &Keys,
    now_ms: u64,
    settled: &mut HashSet<String>,
) -> Result<Report, ReconcileError> {
    if settled.is_empty() {
        settled.extend(ledger.reconciled().await?);
    }
    let records = store.list_drops().await?;
    reconcile_records(store, ledger, keys, now_ms, settled, records).await
}

/// One pass over the drops the store lists as open and not in `settled`; `settled` then
/// keeps only those drops (it need not remember drops the store no longer lists).
pub(crate) async fn reconcile_open(
    store: &dyn Store,
    ledger: &Ledger,
    keys: &Keys,
    now_ms: u64,
    settled: &mut HashSet<String>,
) -> Result<Report, ReconcileError> {
    let records = store.open_drops().await?;
    let listed: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    settled.retain(|id| listed.contains(id.as_str()));
    reconcile_records(store, ledger, keys, now_ms, settled, records).await
}

async fn reconcile_records(
    store: &dyn Store,
    ledger: &Ledger,
    keys: &Keys,
    now_ms: u64,
    settled: &mut HashSet<String>,
    records: Vec<dropwire_core::DropRecord>,
) -> Result<Report, ReconcileError> {
    let mut report = Report::default();
    for record in records {
        if settled.contains(record.id.as_str()) {
            continue;
        }
        report.drops += 1;
        let view = TimelineView::compute(&record.spec.script, &record.log, now_ms);
        let claims = store.claims(&record.id).await?;
        let mut facts = Fact::of_drop(&record, &view, None);
        facts.extend(
            claims
                .iter()
                .flat_map(|c| super::claim_facts(keys, c, &record)),
        );
        for chunk in facts.chunks(CHUNK) {
            report.written += ledger.record(chunk).await?;
        }
        if view.state != DropState::Closed && record.spec.early_access_s > 0 {
            for viewer in ledger.waitlisted(record.id.as_str()).await? {
                store.admit(&record.id, &viewer).await?;
            }
        }
        let held = claims.iter().any(|c| c.state == ClaimState::Held);
        if view.state == DropState::Closed && !held {
            ledger.mark_reconciled(record.id.as_str(), now_ms).await?;
            settled.insert(record.id.to_string());
            report.settled += 1;
        }
    }
    Ok(report)
}

/// Reconciles at start and every [`EVERY`] until shutdown.
pub(crate) async fn reconcile_forever(state: AppState) {
    let Some(funnel) = state.funnel.clone() else {
        return;
    };
    let mut shutdown = state.shutdown.clone();
    let mut settled = HashSet::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut passes: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = state.clock.now_ms();
        let (store, ledger, keys) = (&*state.store, &funnel.ledger, &*state.keys);
        let pass = if passes.is_multiple_of(FULL_EVERY) {
            settled.clear();
            reconcile_once(store, ledger, keys, now, &mut settled).await
        } else {
            reconcile_open(store, ledger, keys, now, &mut settled).await
        };
        passes += 1;
        match pass {
            Ok(report) => {
                state.metrics.ledger_reconciled.inc_by(report.written);
                if report.written > 0 {
                    tracing::info!(
                        written = report.written,
                        drops = report.drops,
                        "ledger reconciled: facts the feed had not written"
                    );
                } else {
                    tracing::debug!(
                        drops = report.drops,
                        settled = report.settled,
                        "ledger reconciled"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "ledger reconciliation failed; will retry"),
        }
    }
}
