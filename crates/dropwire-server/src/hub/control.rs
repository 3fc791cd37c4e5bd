//! The control log of a drop on this node: appending to it (start, pause, resume, close,
//! fire now, and the start on schedule), and taking in what another node appended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dropwire_core::schedule::AutoStart;
use dropwire_core::{ControlAction, ControlEntry, DropRecord, DropState, TimelineView};
use dropwire_store::StoreError;

use super::DropHub;
use super::relay::Resend;
use crate::error::AppError;

/// The shortest time between two re-reads of the control log for refused claims.
const RECHECK_EVERY: Duration = Duration::from_millis(50);

impl DropHub {
    /// Before a claim or a coupon that arrived at `arrived` is refused as not open, on a
    /// node that shares the drop with others: reads the control log again from the store.
    /// Another node may have appended a reveal (or a resume) and died before telling the
    /// others; its viewers, back on this node, must not be refused what the log grants.
    ///
    /// One re-read at a time per hub, and at most one per [`RECHECK_EVERY`], so refusals
    /// (viewers tapping before the reveal) cost the store a bounded number of reads; a
    /// caller that waited for a re-read begun after it arrived takes that one's answer.
    pub(super) async fn recheck_log(&self, arrived: Instant) {
        if !self.shared {
            return;
        }
        // An async lock, held across the read on purpose: it is the queue of callers.
        let mut last = self.log_recheck.lock().await;
        if last.is_some_and(|t| t >= arrived || t.elapsed() < RECHECK_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.stored_record().await {
            tracing::warn!(drop = %self.id, error = %e, "cannot re-read the control log");
        }
    }

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

    /// The relay's periodic look at the stored control log (with its catch-up of missed
    /// broadcasts): an action another node logged but never announced, because it died
    /// between the two, is taken in and its cues published here (marks keep a cue that
    /// did go out from going out twice).
    pub(super) async fn catch_up_log(&self) {
        if self.lock().view.state == DropState::Closed {
            return;
        }
        self.resync(Resend::Nothing).await;
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
                if confirmed || !self.shared {
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

    /// Starts the drop if its schedule says it is due now ([`AutoStart`]): an ordinary
    /// `start`, appended to the control log only while the log is still empty (the store's
    /// conditional append), so of several nodes racing one start is kept and a drop the
    /// streamer has touched is left alone. True when nothing is left to do: started here,
    /// or by another node or the streamer first, or not due; false when the store failed
    /// and the start should be tried again.
    pub async fn start_on_schedule(&self) -> bool {
        if AutoStart::of(&self.record(), self.ctx.clock.now_ms()) != AutoStart::Due {
            return true;
        }
        let outcome = match self.control(ControlAction::Start).await {
            Ok(record) => {
                let at_ms = record.log.first().map_or(0, |e| e.at_ms);
                tracing::info!(drop = %self.id, at_ms, "started on schedule");
                "started"
            }
            // Refused or conflicting: `control` has taken the stored log, which now says
            // whether anything is left to do (another node or the streamer came first).
            Err(_) if AutoStart::of(&self.record(), self.ctx.clock.now_ms()) != AutoStart::Due => {
                "elsewhere"
            }
            Err(e) => {
                tracing::warn!(drop = %self.id, error = %e, "cannot start on schedule; will retry");
                "failed"
            }
        };
        self.ctx
            .metrics
            .schedule_starts
            .with_label_values(&[outcome])
            .inc();
        outcome != "failed"
    }

    /// The drop's record as the store has it now, taken as this node's.
    async fn stored_record(&self) -> Result<Arc<DropRecord>, StoreError> {
        let fresh = self.ctx.store.drop_record(&self.id).await?;
        let record = Arc::new(fresh.ok_or_else(|| StoreError::NoSuchDrop(self.id.clone()))?);
        self.apply_record(Arc::clone(&record));
        Ok(record)
    }
}
