//! The control log of a drop on this node: appending to it (start, pause, resume, close,
//! fire now), and taking in what another node appended.

use std::sync::Arc;

use dropwire_core::{ControlAction, ControlEntry, DropRecord, TimelineView};
use dropwire_store::StoreError;

use super::DropHub;
use super::relay::Resend;
use crate::error::AppError;

impl DropHub {
    /// After the bus said this node's control log is behind: re-reads it, publishes what
    /// changed, and publishes again what was refused (marks keep out what another node
    /// published already).
    pub(super) async fn resync(&self, resend: Resend) {
        let fresh = match self.ctx.store.drop_record(&self.id).await {
            Ok(Some(r)) => Arc::new(r),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(drop = %self.id, error = %e, "cannot re-read the control log");
                return;
            }
        };
        let now = self.ctx.clock.now_ms();
        let mut sh = self.lock();
        if fresh.log.len() > sh.record.log.len() {
            sh.record = fresh;
        }
        self.refresh(&mut sh, now);
        let view = sh.view.clone();
        match resend {
            Resend::Nothing => {}
            Resend::State => self.publish_state(&mut sh, &view),
            Resend::CuesFrom(at_ms) => {
                for n in (0..view.fired.len()).filter(|&n| view.fired[n].at_ms >= at_ms) {
                    self.publish_cue(&mut sh, &view, n);
                }
            }
        }
        drop(sh);
        self.timeline_changed.notify_one();
    }

    /// Another node changed the control log (now `len` entries): re-read it.
    pub(super) async fn log_changed(&self, len: u64) {
        if (self.record().log.len() as u64) < len {
            self.resync(Resend::Nothing).await;
        }
    }

    /// Takes a newer record (after a control action, here or elsewhere) and publishes its effects.
    pub fn apply_record(&self, record: Arc<DropRecord>) {
        let now = self.ctx.clock.now_ms();
        let mut sh = self.lock();
        if record.log.len() < sh.record.log.len() {
            return;
        }
        sh.record = record;
        self.refresh(&mut sh, now);
        drop(sh);
        self.timeline_changed.notify_one();
    }

    /// Appends a control action to the log (checked against the state at `now`) and
    /// publishes its effects before returning.
    ///
    /// A refusal (`wrong_state`, `already_fired`) is decided against the log in the store,
    /// never against this node's copy alone: with several nodes, this node may not have
    /// heard yet of a pause another node just made, and must not answer "the drop is live".
    pub async fn control(&self, action: ControlAction) -> Result<Arc<DropRecord>, AppError> {
        let mut record = self.record();
        let mut confirmed = false;
        for _ in 0..8 {
            let now = self.ctx.clock.now_ms();
            let view = TimelineView::compute(&record.spec.script, &record.log, now);
            if let Err(refused) = view.check(&action, &record.spec) {
                if confirmed || !self.sequencer.other_nodes() {
                    return Err(refused.into());
                }
                // Re-read the log once: refuse only what the store's log refuses.
                record = self.stored_record().await?;
                confirmed = true;
                continue;
            }
            let at_ms = record.log.last().map_or(now, |e| e.at_ms.max(now));
            let entry = ControlEntry {
                at_ms,
                action: action.clone(),
            };
            match self
                .ctx
                .store
                .append_control(&self.id, record.log.len(), entry)
                .await
            {
                Ok(log) => {
                    let len = log.len() as u64;
                    let updated = Arc::new(DropRecord {
                        log,
                        ..(*record).clone()
                    });
                    self.apply_record(Arc::clone(&updated));
                    self.sequencer.announce_log(self, len).await;
                    return Ok(updated);
                }
                Err(StoreError::Conflict) => {
                    record = self.stored_record().await?;
                    confirmed = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// The drop's record as the store has it now, taken as this node's.
    async fn stored_record(&self) -> Result<Arc<DropRecord>, StoreError> {
        let fresh = self.ctx.store.drop_record(&self.id).await?;
        let record = Arc::new(fresh.ok_or_else(|| StoreError::NoSuchDrop(self.id.clone()))?);
        self.apply_record(Arc::clone(&record));
        Ok(record)
    }
}
