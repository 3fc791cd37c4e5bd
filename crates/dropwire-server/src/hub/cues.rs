//! The timeline's broadcasts: what changed between the hub's last view and now — the
//! state, each cue that fired — published in order, under the marks that let every node
//! compute them and one copy reach viewers.

use std::sync::Arc;

use dropwire_core::protocol::{NextCue, ServerMsg};
use dropwire_core::script::CueType;
use dropwire_core::timeline::CueKey;
use dropwire_core::{ControlAction, DropRecord, DropState, Fact, TimelineView};
use dropwire_store::Mark;

use super::relay::Resend;
use super::{DropHub, HubState};

impl DropHub {
    /// Publishes what changed on the timeline between the last view and `now`.
    pub(super) fn refresh(&self, sh: &mut HubState, now_ms: u64) {
        let view = TimelineView::compute(&sh.record.spec.script, &sh.record.log, now_ms);
        let state_changed = view.state != sh.view.state;
        let new_cues = if view.fired.starts_with(&sh.view.fired) {
            sh.view.fired.len()..view.fired.len()
        } else {
            0..0
        };
        if state_changed && view.state != DropState::Closed {
            self.publish_state(sh, &view);
        }
        let mut revealed = false;
        for n in new_cues {
            revealed |= self.publish_cue(sh, &view, n);
        }
        if state_changed && view.state == DropState::Closed {
            self.publish_state(sh, &view);
        }
        if state_changed {
            self.touch();
        }
        if let (true, Some(feed)) = (state_changed, &self.ctx.feed) {
            // The node closing the drop knows how many watched at most (over every node,
            // with Redis); the first node to write the fact gives the figure.
            let peak = Some(self.viewer_counts().peak);
            feed.push(Fact::of_drop(&sh.record, &view, peak));
        }
        sh.view = view;
        sh.viewed_at_ms = now_ms;
        if revealed {
            self.stock_changed();
        }
    }

    pub(super) fn publish_state(&self, sh: &mut HubState, view: &TimelineView) {
        let record = Arc::clone(&sh.record);
        let next_cue = NextCue::of(view, &record.spec.script);
        let log_len = record.log.len() as u64;
        let mark = || {
            // The state and when it began: the same on every node.
            let at_ms = state_since(&record, view);
            let field = format!("state:{}:{at_ms}", view.state);
            let sets = match view.state {
                DropState::Live => vec!["timeline".to_owned()],
                DropState::Closed => vec!["closed".to_owned()],
                DropState::Scheduled | DropState::Paused => Vec::new(),
            };
            let mark = Mark::Once {
                field,
                log_len,
                at_ms,
                sets,
            };
            (mark, Resend::State)
        };
        self.publish(sh, mark, |seq, ts| ServerMsg::State {
            seq,
            ts,
            state: view.state,
            elapsed_s: view.elapsed_ms as f64 / 1000.0,
            next_cue: next_cue.clone(),
        });
    }

    /// Publishes the `n`th fired cue of `view`; true if it revealed a product.
    pub(super) fn publish_cue(&self, sh: &mut HubState, view: &TimelineView, n: usize) -> bool {
        let record = Arc::clone(&sh.record);
        let Some(f) = view.fired.get(n) else {
            return false;
        };
        let item = match (f.cue.kind, &f.cue.sku) {
            (CueType::Reveal, Some(sku)) => record.spec.item(sku).cloned().map(Box::new),
            _ => None,
        };
        let revealed = item.is_some();
        let opens = item.as_ref().map(|i| i.sku.clone());
        let early = record.spec.early_access_ms();
        let public_ms = (revealed && early > 0).then(|| f.at_ms + early);
        let log_len = record.log.len() as u64;
        let mark = || {
            // Which cue (a script cue fires once; an ad-hoc one is its log entry) and when:
            // the same on every node, however the nodes' clocks order an ad-hoc fire
            // among the cues around it.
            let field = match f.key {
                CueKey::Script(i) => format!("cue:s{i}:{}", f.at_ms),
                CueKey::AdHoc(pos) => format!("cue:a{pos}:{}", f.at_ms),
            };
            // A reveal opens its SKU's claims in Redis too (the claim script checks).
            let sets = opens
                .as_ref()
                .map(|sku| vec![format!("open:{sku}")])
                .unwrap_or_default();
            let mark = Mark::Once {
                field,
                log_len,
                at_ms: f.at_ms,
                sets,
            };
            (mark, Resend::CuesFrom(f.at_ms))
        };
        self.publish(sh, mark, |seq, ts| ServerMsg::Cue {
            seq,
            ts,
            index: f.index(),
            cue: f.cue.clone(),
            at_ms: f.at_ms,
            item: item.clone(),
            public_ms,
            next_cue: NextCue::of(view, &record.spec.script),
        });
        revealed
    }
}

/// When the drop entered its current state: the close, or the last start, pause or resume.
fn state_since(record: &DropRecord, view: &TimelineView) -> u64 {
    if view.state == DropState::Closed
        && let Some(at) = view.closed_ms
    {
        return at;
    }
    record
        .log
        .iter()
        .rev()
        .find(|e| {
            !matches!(
                e.action,
                ControlAction::Fire { .. } | ControlAction::Chat { .. }
            )
        })
        .map_or(0, |e| e.at_ms)
}
