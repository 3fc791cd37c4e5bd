//! A drop's create body and its timeline.
//!
//! Input: the body's JSON, then (after a NUL byte) the bytes that drive a control log. The
//! body is read as `POST /api/v1/drops` reads it and validated; a valid one must survive
//! the journal's JSON round trip unchanged and still be valid. Then the timeline of the
//! valid body (the example drop when the input's is not) is computed under a fuzz-chosen
//! control log — what the hub appends (checked first) and, as an old or damaged journal
//! may hold, what it would refuse — at fuzz-chosen times. Nothing may panic; the view
//! keeps its invariants, and a later `now` only adds to what has fired.
#![no_main]

use dropwire_core::{
    ControlAction, ControlEntry, Cue, CueType, DropSpec, DropState, FireTarget, TimelineView,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const EXAMPLE: &str = include_str!("../../examples/speckled-mugs.json");

const KINDS: [CueType; 8] = [
    CueType::Intro,
    CueType::Reveal,
    CueType::FlashCoupon,
    CueType::Scarcity,
    CueType::Quest,
    CueType::Cta,
    CueType::SoftClose,
    CueType::Close,
];

fuzz_target!(|data: &[u8]| {
    let (json, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let spec = match serde_json::from_slice::<DropSpec>(json) {
        Ok(spec) => match spec.validate() {
            Ok(()) => {
                round_trip(&spec);
                spec
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                example()
            }
        },
        Err(_) => example(),
    };
    let _ = timeline(&spec, &mut Unstructured::new(rest));
});

fn example() -> DropSpec {
    let spec: DropSpec = serde_json::from_str(EXAMPLE).expect("the example drop parses");
    spec.validate().expect("the example drop is valid");
    spec
}

/// The store journals a drop as JSON and reads it back on every start.
fn round_trip(spec: &DropSpec) {
    let json = serde_json::to_vec(spec).expect("a spec serializes");
    let back: DropSpec = match serde_json::from_slice(&json) {
        Ok(back) => back,
        Err(e) => panic!(
            "a valid spec does not read back ({e}): {}",
            String::from_utf8_lossy(&json)
        ),
    };
    assert_eq!(back.validate(), Ok(()));
    // A nurture step's free-form `detail` may hold floats, which serde_json reads back to
    // within a rounding step only: compare everything else exactly.
    assert_eq!(without_details(back), without_details(spec.clone()));
}

fn without_details(mut spec: DropSpec) -> DropSpec {
    for step in spec.nurture.iter_mut().flatten() {
        step.detail = serde_json::Value::Null;
    }
    spec
}

fn timeline(spec: &DropSpec, u: &mut Unstructured<'_>) -> Result<()> {
    let script = &spec.script;
    let mut log: Vec<ControlEntry> = Vec::new();
    let mut t: u64 = u.arbitrary()?;
    let entries = u.int_in_range(0..=40)?;
    for _ in 0..entries {
        t = if u.ratio(1, 16)? {
            u.arbitrary()?
        } else {
            t.saturating_add(u.int_in_range(0..=900_000)?)
        };
        let action = action(spec, u)?;
        let view = TimelineView::compute(script, &log, t);
        queries(spec, &view, t);
        let allowed = view.check(&action, spec).is_ok();
        if allowed || u.ratio(1, 8)? {
            log.push(ControlEntry { at_ms: t, action });
        }
    }
    let now: u64 = if u.ratio(1, 2)? {
        u.arbitrary()?
    } else {
        t.saturating_add(u.int_in_range(0..=20_000_000)?)
    };
    let view = TimelineView::compute(script, &log, now);
    queries(spec, &view, now);
    assert_eq!(
        view,
        TimelineView::compute(script, &log, now),
        "not a function"
    );

    let later = now.saturating_add(u.int_in_range(0..=20_000_000)?);
    let then = TimelineView::compute(script, &log, later);
    queries(spec, &then, later);
    assert!(
        then.fired.starts_with(&view.fired),
        "what fired by {now} is not a prefix of what fired by {later}: {log:?}"
    );
    if view.state == DropState::Closed {
        assert_eq!(then.state, DropState::Closed);
        assert_eq!(then.closed_ms, view.closed_ms);
    }
    Ok(())
}

fn action(spec: &DropSpec, u: &mut Unstructured<'_>) -> Result<ControlAction> {
    Ok(match u.int_in_range(0..=5)? {
        0 => ControlAction::Start,
        1 => ControlAction::Pause,
        2 => ControlAction::Resume,
        3 => ControlAction::Close,
        4 => ControlAction::Fire {
            cue: FireTarget::Script(u.int_in_range(0..=spec.script.cues.len() + 1)?),
        },
        _ => ControlAction::Fire {
            cue: FireTarget::AdHoc(Box::new(ad_hoc(spec, u)?)),
        },
    })
}

/// An ad-hoc cue: one of the script's, or one made up (valid or not).
fn ad_hoc(spec: &DropSpec, u: &mut Unstructured<'_>) -> Result<Cue> {
    if u.ratio(1, 2)? {
        return Ok(u.choose(&spec.script.cues)?.clone());
    }
    let mut cue = Cue::new(u.arbitrary()?, *u.choose(&KINDS)?);
    cue.sku = if u.ratio(3, 4)? {
        Some(u.choose(&spec.inventory)?.sku.clone())
    } else {
        u.arbitrary()?
    };
    cue.title = u.arbitrary()?;
    cue.code = u.arbitrary()?;
    cue.percent_off = u.arbitrary()?;
    cue.ttl_s = u.arbitrary()?;
    cue.unique = u.arbitrary()?;
    cue.limit = u.arbitrary()?;
    cue.points = u.arbitrary()?;
    Ok(cue)
}

/// Everything the hub asks a view, and the invariants of its answers.
fn queries(spec: &DropSpec, view: &TimelineView, now: u64) {
    let duration_ms = u64::from(spec.script.duration_s) * 1000;
    assert!(view.elapsed_ms <= duration_ms);
    assert_eq!(view.closed_ms.is_some(), view.state == DropState::Closed);
    if view.state != DropState::Scheduled && view.state != DropState::Closed {
        assert!(view.started_ms.is_some());
    }
    if view.state != DropState::Live {
        assert!(view.next.is_none() && view.ends_ms.is_none());
    }
    let _ = view.next_change_ms();
    let _ = view.current();
    for item in &spec.inventory {
        let _ = view.window(&item.sku, now, spec.early_access_ms());
        let _ = view.public_opens_ms(&item.sku, spec.early_access_ms());
        let _ = view.is_revealed(&item.sku);
    }
    for (fired, until) in view.active_coupons(now) {
        assert!(until > now && fired.cue.kind == CueType::FlashCoupon);
    }
    for fired in &view.fired {
        let _ = fired.index();
    }
}
