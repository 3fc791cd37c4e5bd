//! The hub's task: starts the drop on schedule ([`dropwire_core::schedule`]), fires cues
//! on time, publishes coalesced figures (the viewer count among them) and the chat's ticks,
//! and keeps sequence numbers in reserve (without a bus), until the server shuts down or the
//! hub is retired ([`super::Hubs`] evicts idle hubs).

use std::sync::Arc;
use std::time::Duration;

use dropwire_core::DropState;
use dropwire_core::schedule::AutoStart;
use tokio::time::Instant;

use super::{COALESCE, DropHub};

/// How long a start on schedule that the store failed waits before it is tried again.
const START_RETRY: Duration = Duration::from_secs(1);
/// The longest a hub sleeps before looking at its start on schedule again.
const START_RECHECK: Duration = Duration::from_secs(60);

/// Resolves once `flag` is (or becomes) true, or its sender is gone: the hub's `stop`, or
/// the server's shutdown. (`wait_for` itself returns a guard that must not be held.)
pub(crate) async fn raised(flag: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await.map(|_| ());
}

impl DropHub {
    /// Notes a use of the hub (a request, a viewer, a state change): it is not idle.
    pub fn touch(&self) {
        *crate::sync::lock(&self.last_used) = Instant::now();
    }

    /// How long a cue or state change is retried on the bus before it is given up.
    pub fn publish_patience(&self) -> Duration {
        self.ctx.publish_patience
    }

    /// Ends the hub's tasks (and with them its relay and bus subscription).
    pub(super) fn retire(&self) {
        self.stop.send_replace(true);
    }

    /// Whether the hub may be evicted at `now`: its drop closed, no viewer here, unused for
    /// `grace`, and held by nothing but its own tasks and the registry.
    pub(super) fn is_idle(self: &Arc<Self>, now: Instant, grace: Duration) -> bool {
        if Arc::strong_count(self) > self.own_refs || self.local_viewers() > 0 {
            return false;
        }
        let used = *crate::sync::lock(&self.last_used);
        now >= used + grace && self.lock().view.state == DropState::Closed
    }

    /// The hub's task: cues on time, coalesced figures, until shutdown.
    pub(super) async fn run(self: Arc<Self>) {
        let mut shutdown = self.ctx.shutdown.clone();
        let mut retired = self.stop.subscribe();
        let mut last_figures = tokio::time::Instant::now() - COALESCE;
        let mut figures_due: Option<tokio::time::Instant> = None;
        // After a start on schedule that the store refused to take: when to try again.
        let mut start_again: Option<Instant> = None;
        let mut told_missed = false;
        let mut chat_due: Option<Instant> = None;
        loop {
            let (next, auto) = {
                let now = self.ctx.clock.now_ms();
                let mut sh = self.lock();
                self.refresh(&mut sh, now);
                (sh.view.next_change_ms(), AutoStart::of(&sh.record, now))
            };
            let wake = next.map(|ms| self.ctx.clock.instant_at(ms));
            let start_at = match auto {
                // Looked at again every minute at least: the start is on the wall clock,
                // which may be stepped while the task sleeps on the monotonic one.
                AutoStart::Waiting { at_ms } => Some(
                    self.ctx
                        .clock
                        .instant_at(at_ms)
                        .min(Instant::now() + START_RECHECK),
                ),
                AutoStart::Due => Some(start_again.unwrap_or_else(Instant::now)),
                AutoStart::Missed | AutoStart::Manual => None,
            };
            if auto == AutoStart::Missed && !told_missed {
                told_missed = true;
                self.ctx
                    .metrics
                    .schedule_starts
                    .with_label_values(&["missed"])
                    .inc();
                tracing::warn!(drop = %self.id, "starts_at is more than the script's length ago: not started by itself (start or close it by hand)");
            }
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                _ = tokio::time::sleep_until(start_at.unwrap_or(far)), if start_at.is_some() => {
                    start_again = (!self.start_on_schedule().await)
                        .then(|| Instant::now() + START_RETRY);
                }
                _ = tokio::time::sleep_until(wake.unwrap_or(far)), if wake.is_some() => {}
                _ = self.timeline_changed.notified() => {}
                _ = self.figures_changed.notified(), if figures_due.is_none() => {
                    // Trailing edge: a burst of claims is summed up once it has had time to land,
                    // instead of fanning out mid-burst while answers are still owed.
                    figures_due = Some((last_figures + COALESCE).max(tokio::time::Instant::now() + COALESCE / 2));
                }
                _ = tokio::time::sleep_until(figures_due.unwrap_or(far)), if figures_due.is_some() => {
                    figures_due = None;
                    last_figures = tokio::time::Instant::now();
                    self.publish_figures().await;
                }
                _ = self.chat_waiting.notified(), if chat_due.is_none() => {
                    chat_due = Some(Instant::now() + super::chat_tick(self.viewer_counts().now));
                }
                _ = tokio::time::sleep_until(chat_due.unwrap_or(far)), if chat_due.is_some() => {
                    chat_due = None;
                    self.flush_chat();
                }
                () = raised(&mut shutdown) => break,
                () = raised(&mut retired) => break,
            }
            self.sequencer.top_up(&self).await;
        }
        // The mode's own tasks end too (the relay's heartbeat leaves the viewer count).
        self.retire();
    }
}
