//! Reconciliation: the ledger made to agree with the store. For every drop not yet settled
//! it writes the facts the store's state implies (the drop's states, each claim granted,
//! redeemed or expired; ids already there are skipped), and admits the drop's waitlist to
//! its early-access segment. A closed drop with no claim still held is settled: it is
//! marked in the ledger and never read again, so the work does not grow with past drops.

use std::collections::HashSet;
use std::time::Duration;

use dropwire_core::{ClaimState, DropState, Fact, TimelineView};
use dropwire_funnel::{FunnelError, Ledger};
use dropwire_store::{Store, StoreError};

use crate::app::AppState;
use crate::auth::Keys;

/// How often the ledger is reconciled with the store.
pub const EVERY: Duration = Duration::from_secs(30);
/// Facts written per transaction while reconciling.
const CHUNK: usize = 1000;

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

/// One pass over the drops not in `settled` (which it extends).
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
    let mut report = Report::default();
    for record in store.list_drops().await? {
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
pub async fn reconcile_forever(state: AppState) {
    let Some(funnel) = state.funnel.clone() else {
        return;
    };
    let mut shutdown = state.shutdown.clone();
    let mut settled = HashSet::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = state.clock.now_ms();
        match reconcile_once(
            &*state.store,
            &funnel.ledger,
            &state.keys,
            now,
            &mut settled,
        )
        .await
        {
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
