use proptest::prelude::*;

use super::*;
use crate::drop::{DropKind, InventoryItem};

fn spec(cues: Vec<Cue>, duration_s: u32) -> DropSpec {
    DropSpec {
        id: None,
        title: "t".into(),
        kind: DropKind::Drop,
        currency: "EUR".into(),
        hold_s: 900,
        inventory: vec![InventoryItem {
            sku: "mug".into(),
            name: "Mug".into(),
            price_cents: 100,
            stock: 5,
            per_viewer_limit: 1,
            image_url: None,
            variants: Vec::new(),
        }],
        script: Script { duration_s, cues },
        starts_at: None,
        auto_start: false,
        early_access_s: 0,
        follow_up: None,
        nurture: None,
    }
}

fn reveal(at: u32) -> Cue {
    Cue {
        sku: Some("mug".into()),
        ..Cue::new(at, CueType::Reveal)
    }
}

fn entry(at_ms: u64, action: ControlAction) -> ControlEntry {
    ControlEntry { at_ms, action }
}

fn keys(v: &TimelineView) -> Vec<CueKey> {
    v.fired.iter().map(|f| f.key).collect()
}

const T0: u64 = 1_700_000_000_000;

#[test]
fn cues_fire_on_live_time_and_pause_holds_it() {
    let s = spec(
        vec![
            Cue::new(0, CueType::Intro),
            reveal(90),
            Cue::new(600, CueType::Close),
        ],
        600,
    );
    let mut log = vec![entry(T0, ControlAction::Start)];
    let v = TimelineView::compute(&s.script, &log, T0 + 89_999);
    assert_eq!(keys(&v), [CueKey::Script(0)]);
    assert_eq!(v.next, Some((1, T0 + 90_000)));
    assert_eq!(v.window("mug", 0, 0), ClaimWindow::NotOpen);

    log.push(entry(T0 + 60_000, ControlAction::Pause));
    let v = TimelineView::compute(&s.script, &log, T0 + 500_000);
    assert_eq!(
        (v.state, v.elapsed_ms, v.fired.len()),
        (DropState::Paused, 60_000, 1)
    );
    assert_eq!(v.next_change_ms(), None);

    log.push(entry(T0 + 100_000, ControlAction::Resume));
    let v = TimelineView::compute(&s.script, &log, T0 + 129_999);
    assert_eq!(
        v.fired.len(),
        1,
        "30 s of live time remain before the reveal"
    );
    let v = TimelineView::compute(&s.script, &log, T0 + 130_000);
    assert_eq!(keys(&v), [CueKey::Script(0), CueKey::Script(1)]);
    assert_eq!(v.fired[1].at_ms, T0 + 130_000);
    assert_eq!(v.window("mug", 0, 0), ClaimWindow::Open);

    let v = TimelineView::compute(&s.script, &log, T0 + 10_000_000);
    assert_eq!(v.state, DropState::Closed);
    assert_eq!(v.closed_ms, Some(T0 + 640_000));
    assert_eq!(v.window("mug", 0, 0), ClaimWindow::Closed);
    assert_eq!(v.elapsed_ms, 600_000);
}

#[test]
fn early_access_opens_to_the_segment_first_then_to_everyone() {
    let s = spec(vec![reveal(90), Cue::new(600, CueType::Close)], 600);
    let log = vec![entry(T0, ControlAction::Start)];
    let early = 30_000;
    let v = TimelineView::compute(&s.script, &log, T0 + 90_000);
    let public_ms = T0 + 120_000;
    assert_eq!(v.public_opens_ms("mug", early), Some(public_ms));
    assert_eq!(
        v.window("mug", T0 + 90_000, early),
        ClaimWindow::EarlyAccess { public_ms }
    );
    assert_eq!(
        v.window("mug", public_ms - 1, early),
        ClaimWindow::EarlyAccess { public_ms }
    );
    assert_eq!(v.window("mug", public_ms, early), ClaimWindow::Open);
    assert_eq!(v.window("mug", T0 + 90_000, 0), ClaimWindow::Open, "off");
    assert_eq!(v.window("cup", T0 + 90_000, early), ClaimWindow::NotOpen);
    // Paused inside the window: shut for everyone.
    let mut paused = log.clone();
    paused.push(entry(T0 + 95_000, ControlAction::Pause));
    let v = TimelineView::compute(&s.script, &paused, T0 + 96_000);
    assert_eq!(v.window("mug", T0 + 96_000, early), ClaimWindow::NotOpen);
}

#[test]
fn fire_now_fires_once_and_manual_close_ends() {
    let s = spec(vec![Cue::new(0, CueType::Intro), reveal(90)], 600);
    let mut log = vec![entry(T0, ControlAction::Start)];
    let fire = ControlAction::Fire {
        cue: FireTarget::Script(1),
    };
    let v = TimelineView::compute(&s.script, &log, T0 + 10_000);
    assert_eq!(v.check(&fire, &s), Ok(()));
    log.push(entry(T0 + 10_000, fire.clone()));
    let v = TimelineView::compute(&s.script, &log, T0 + 200_000);
    assert_eq!(keys(&v), [CueKey::Script(0), CueKey::Script(1)]);
    assert_eq!(
        v.check(&fire, &s),
        Err(CoreError::AlreadyFired { index: 1 })
    );

    let ad_hoc = ControlAction::Fire {
        cue: FireTarget::AdHoc(Box::new(Cue::new(0, CueType::Cta))),
    };
    log.push(entry(T0 + 200_000, ad_hoc));
    log.push(entry(T0 + 210_000, ControlAction::Close));
    let v = TimelineView::compute(&s.script, &log, T0 + 900_000);
    assert_eq!(
        keys(&v),
        [CueKey::Script(0), CueKey::Script(1), CueKey::AdHoc(2)]
    );
    assert_eq!(
        (v.state, v.closed_ms),
        (DropState::Closed, Some(T0 + 210_000))
    );
    assert!(matches!(
        v.check(&ControlAction::Start, &s),
        Err(CoreError::WrongState { .. })
    ));
}

#[test]
fn wrong_transitions_are_refused() {
    let s = spec(vec![reveal(5)], 60);
    let v = TimelineView::compute(&s.script, &[], T0);
    assert_eq!(v.state, DropState::Scheduled);
    for a in [
        ControlAction::Pause,
        ControlAction::Resume,
        ControlAction::Fire {
            cue: FireTarget::Script(0),
        },
    ] {
        assert!(v.check(&a, &s).is_err(), "{a:?}");
    }
    assert_eq!(v.check(&ControlAction::Close, &s), Ok(()));
    let live = TimelineView::compute(&s.script, &[entry(T0, ControlAction::Start)], T0);
    assert_eq!(
        live.check(
            &ControlAction::Fire {
                cue: FireTarget::Script(9)
            },
            &s
        ),
        Err(CoreError::NoSuchCue { index: 9, len: 1 })
    );
    let bad = ControlAction::Fire {
        cue: FireTarget::AdHoc(Box::new(Cue::new(0, CueType::Reveal))),
    };
    assert!(live.check(&bad, &s).is_err());
}

/// Found by `fuzz/` (drop_spec): a log whose times are near `u64::MAX` (a journal is read
/// as written) overflowed the projected wall times and a coupon's end.
#[test]
fn wall_times_near_the_end_of_u64_saturate() {
    let coupon = Cue {
        code: Some("K".into()),
        percent_off: Some(10),
        ttl_s: Some(60),
        ..Cue::new(30, CueType::FlashCoupon)
    };
    let s = spec(vec![coupon, reveal(500)], 600);
    let late = u64::MAX - 40_000;
    let log = [entry(late, ControlAction::Start)];
    let v = TimelineView::compute(&s.script, &log, late);
    assert_eq!(v.state, DropState::Live);
    assert_eq!(v.next, Some((0, late + 30_000)));
    assert_eq!(v.ends_ms, Some(u64::MAX));
    assert_eq!(v.next_change_ms(), Some(late + 30_000));

    let v = TimelineView::compute(&s.script, &log, u64::MAX);
    assert_eq!(keys(&v), [CueKey::Script(0)]);
    assert_eq!(v.next, Some((1, u64::MAX)));
    let coupons: Vec<u64> = v
        .active_coupons(u64::MAX - 1)
        .map(|(_, until)| until)
        .collect();
    assert_eq!(coupons, [u64::MAX], "valid until the end of time");

    // An ordinary log reads as before.
    let log = [
        entry(0, ControlAction::Start),
        entry(10_000, ControlAction::Pause),
        entry(20_000, ControlAction::Resume),
    ];
    let v = TimelineView::compute(&s.script, &log, u64::MAX);
    assert_eq!((v.state, v.elapsed_ms), (DropState::Closed, 600_000));
    assert_eq!(v.closed_ms, Some(610_000));
}

#[test]
fn control_entries_round_trip_as_json() {
    let e = entry(
        5,
        ControlAction::Fire {
            cue: FireTarget::Script(3),
        },
    );
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#"{"at_ms":5,"action":"fire","cue":3}"#);
    assert_eq!(serde_json::from_str::<ControlEntry>(&json).unwrap(), e);
}

#[derive(Debug, Clone)]
enum Op {
    Start,
    Pause,
    Resume,
    Close,
    FireScript(usize),
    FireAdHoc,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        3 => Just(Op::Pause),
        3 => Just(Op::Resume),
        1 => Just(Op::Close),
        2 => (0usize..8).prop_map(Op::FireScript),
        1 => Just(Op::FireAdHoc),
    ]
}

fn script_strategy() -> impl Strategy<Value = DropSpec> {
    (
        10u32..300,
        prop::collection::vec((0u32..=1000, any::<bool>()), 1..8),
    )
        .prop_map(|(duration, raw)| {
            let mut ats: Vec<u32> = raw.iter().map(|(a, _)| a * duration / 1000).collect();
            ats.sort_unstable();
            let cues = ats
                .iter()
                .zip(&raw)
                .map(|(&at, &(_, is_reveal))| {
                    if is_reveal {
                        reveal(at)
                    } else {
                        Cue::new(at, CueType::Cta)
                    }
                })
                .collect();
            spec(cues, duration)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever the streamer does, a script cue fires at most once, never is skipped once
    /// live time passes it, ad-hoc cues appear exactly once, and the fired list only grows.
    #[test]
    fn pausing_and_firing_never_duplicate_or_skip(
        s in script_strategy(),
        ops in prop::collection::vec((op(), 0u64..40_000), 0..25),
    ) {
        let mut log: Vec<ControlEntry> = Vec::new();
        let mut t = T0;
        let mut accepted_ad_hoc = Vec::new();
        let mut views = Vec::new();
        for (op, dt) in ops {
            t += dt;
            let view = TimelineView::compute(&s.script, &log, t);
            views.push((t, view.clone()));
            let action = match op {
                Op::Start => ControlAction::Start,
                Op::Pause => ControlAction::Pause,
                Op::Resume => ControlAction::Resume,
                Op::Close => ControlAction::Close,
                Op::FireScript(i) => ControlAction::Fire { cue: FireTarget::Script(i) },
                Op::FireAdHoc => ControlAction::Fire { cue: FireTarget::AdHoc(Box::new(Cue::new(0, CueType::Cta))) },
            };
            if view.check(&action, &s).is_ok() {
                if matches!(op, Op::FireAdHoc) {
                    accepted_ad_hoc.push(log.len());
                }
                log.push(entry(t, action));
            }
        }
        let end = t + 400_000;
        for step in [0, 1, 1_000, 60_000, 400_000] {
            views.push((t + step, TimelineView::compute(&s.script, &log, t + step)));
        }
        let last = TimelineView::compute(&s.script, &log, end);

        let mut seen = std::collections::HashSet::new();
        for f in &last.fired {
            prop_assert!(seen.insert(f.key), "fired twice: {:?}", f.key);
        }
        for pos in accepted_ad_hoc {
            prop_assert!(seen.contains(&CueKey::AdHoc(pos)), "ad-hoc cue {} never fired", pos);
        }
        for (i, cue) in s.script.cues.iter().enumerate() {
            if last.started_ms.is_some() && last.elapsed_ms >= cue.at_ms() {
                prop_assert!(seen.contains(&CueKey::Script(i)), "cue {} at {}s skipped (elapsed {})", i, cue.at_s, last.elapsed_ms);
            }
        }
        for w in last.fired.windows(2) {
            prop_assert!(w[0].at_ms <= w[1].at_ms, "fired out of time order");
        }
        for (at, v) in &views {
            prop_assert!(last.fired.starts_with(&v.fired), "the view at {} is not a prefix of the final view", at);
            prop_assert!(v.elapsed_ms <= last.elapsed_ms);
        }
    }
}

/// Chat moderation entries in the log leave the timeline exactly as it was.
#[test]
fn chat_entries_leave_the_timeline_unchanged() {
    use crate::chat::ChatOp;
    let s = spec(
        vec![
            Cue::new(0, CueType::Intro),
            reveal(90),
            Cue::new(300, CueType::Scarcity),
            Cue::new(600, CueType::Close),
        ],
        600,
    );
    let plain = vec![
        entry(T0, ControlAction::Start),
        entry(T0 + 50_000, ControlAction::Pause),
        entry(T0 + 70_000, ControlAction::Resume),
        entry(
            T0 + 80_000,
            ControlAction::Fire {
                cue: FireTarget::Script(2),
            },
        ),
    ];
    let chat = |at_ms: u64| {
        entry(
            at_ms,
            ControlAction::Chat {
                op: ChatOp::Settings {
                    enabled: Some(false),
                    slow_mode_s: Some(5),
                    blocked_words: None,
                },
            },
        )
    };
    let mut with_chat = vec![chat(T0 - 5_000)];
    for (i, e) in plain.iter().enumerate() {
        with_chat.push(e.clone());
        with_chat.push(chat(e.at_ms + 1_000 * i as u64));
    }
    for now in [
        T0 - 1,
        T0,
        T0 + 60_000,
        T0 + 75_000,
        T0 + 200_000,
        T0 + 900_000,
    ] {
        assert_eq!(
            TimelineView::compute(&s.script, &with_chat, now),
            TimelineView::compute(&s.script, &plain, now),
            "at {now}"
        );
    }
    // And any chat entry may be appended in any state.
    let closed = TimelineView::compute(&s.script, &plain, T0 + 900_000);
    assert_eq!(closed.state, DropState::Closed);
    assert_eq!(closed.check(&chat(0).action, &s), Ok(()));
}
