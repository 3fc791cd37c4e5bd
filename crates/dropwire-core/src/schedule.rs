//! The launch calendar's rules, pure: when a drop starts by itself, and which drops the
//! calendar lists.
//!
//! A drop starts by itself when its spec has `auto_start` (and so a `starts_at`) and its
//! control log is still empty: any start, pause, close or fire by the streamer (which all
//! leave an entry) ends the schedule for good. The start is an ordinary `start` appended to
//! the control log with the store's conditional append, so of several hub nodes racing,
//! one start is kept.
//!
//! **Catching up.** A drop whose `starts_at` passed while no hub node ran (or while the
//! store could not be reached) still starts, late, as long as less than the script's
//! length has passed since `starts_at`: the show would have been under way, and its
//! viewers may still be waiting. The script then runs whole from the late start. Later
//! than that, the slot is over: the drop stays scheduled for the streamer to start or
//! close by hand ([`AutoStart::Missed`]).

use crate::drop::DropRecord;
use crate::timeline::{DropState, TimelineView};

/// Where a drop stands with respect to starting by itself at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoStart {
    /// The streamer starts it: no `auto_start`, or the log has an entry already.
    Manual,
    /// It starts by itself at `at_ms`.
    Waiting { at_ms: u64 },
    /// Start it now (on time, or catching up within the script's length).
    Due,
    /// `starts_at` is more than the script's length ago: too late to start by itself.
    Missed,
}

impl AutoStart {
    pub fn of(record: &DropRecord, now_ms: u64) -> AutoStart {
        let spec = &record.spec;
        let Some(at) = spec.starts_at.filter(|_| spec.auto_start) else {
            return AutoStart::Manual;
        };
        if !record.log.is_empty() {
            return AutoStart::Manual;
        }
        let at_ms = at.ms();
        let too_late_ms = at_ms.saturating_add(u64::from(spec.script.duration_s) * 1000);
        if now_ms < at_ms {
            AutoStart::Waiting { at_ms }
        } else if now_ms < too_late_ms {
            AutoStart::Due
        } else {
            AutoStart::Missed
        }
    }
}

/// Whether the launch calendar lists a drop at `now`: it has a `starts_at`, and is live
/// or paused, or still scheduled and not yet past its slot (`starts_at` plus the script's
/// length). Closed drops are not listed.
pub fn on_calendar(record: &DropRecord, view: &TimelineView, now_ms: u64) -> bool {
    let Some(at) = record.spec.starts_at else {
        return false;
    };
    match view.state {
        DropState::Live | DropState::Paused => true,
        DropState::Closed => false,
        DropState::Scheduled => {
            now_ms
                < at.ms()
                    .saturating_add(u64::from(record.spec.script.duration_s) * 1000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drop::{DropSpec, StartsAt};
    use crate::ids::DropId;
    use crate::timeline::{ControlAction, ControlEntry};

    fn record(starts_at: Option<u64>, auto_start: bool, log: Vec<ControlEntry>) -> DropRecord {
        let mut spec: DropSpec = serde_json::from_value(serde_json::json!({
            "title": "Mugs",
            "inventory": [{"sku": "mug", "name": "Mug", "price_cents": 100, "stock": 1}],
            "script": {"duration_s": 600, "cues": [{"at_s": 0, "type": "intro"}, {"at_s": 600, "type": "close"}]}
        }))
        .expect("spec");
        spec.starts_at = starts_at.map(StartsAt);
        spec.auto_start = auto_start;
        DropRecord {
            id: DropId::parse("mugs").expect("id"),
            spec,
            obs_key: "k".into(),
            created_ms: 0,
            log,
            recipe: None,
            maker: "default".into(),
        }
    }

    const AT: u64 = 1_000_000;

    #[test]
    fn a_scheduled_drop_waits_then_is_due_until_its_slot_is_over() {
        let r = record(Some(AT), true, vec![]);
        assert_eq!(AutoStart::of(&r, 0), AutoStart::Waiting { at_ms: AT });
        assert_eq!(AutoStart::of(&r, AT - 1), AutoStart::Waiting { at_ms: AT });
        assert_eq!(AutoStart::of(&r, AT), AutoStart::Due);
        assert_eq!(AutoStart::of(&r, AT + 599_999), AutoStart::Due);
        assert_eq!(AutoStart::of(&r, AT + 600_000), AutoStart::Missed);
    }

    #[test]
    fn the_streamer_starts_it_without_auto_start_or_after_any_control_action() {
        assert_eq!(
            AutoStart::of(&record(Some(AT), false, vec![]), AT),
            AutoStart::Manual
        );
        assert_eq!(
            AutoStart::of(&record(None, true, vec![]), AT),
            AutoStart::Manual
        );
        for action in [ControlAction::Start, ControlAction::Close] {
            let log = vec![ControlEntry { at_ms: 5, action }];
            assert_eq!(
                AutoStart::of(&record(Some(AT), true, log), AT),
                AutoStart::Manual
            );
        }
    }

    #[test]
    fn the_calendar_lists_drops_with_a_start_until_they_close_or_their_slot_passes() {
        let view = |r: &DropRecord, now| TimelineView::compute(&r.spec.script, &r.log, now);
        let scheduled = record(Some(AT), false, vec![]);
        assert!(on_calendar(&scheduled, &view(&scheduled, 0), 0));
        let late = AT + 600_000;
        assert!(!on_calendar(&scheduled, &view(&scheduled, late), late));
        assert!(!on_calendar(
            &record(None, false, vec![]),
            &view(&scheduled, 0),
            0
        ));
        let start = vec![ControlEntry {
            at_ms: late - 1000,
            action: ControlAction::Start,
        }];
        let live = record(Some(AT), false, start.clone());
        assert!(on_calendar(&live, &view(&live, late), late));
        let mut closed = start;
        closed.push(ControlEntry {
            at_ms: late,
            action: ControlAction::Close,
        });
        let closed = record(Some(AT), false, closed);
        assert!(!on_calendar(&closed, &view(&closed, late), late));
    }
}
