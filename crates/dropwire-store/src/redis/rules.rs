//! What the Redis store's scripts share with the rest of dropwire, from `dropwire-core`:
//! the claim rules of [`dropwire_core::claim`] (points per rank, the refused-rid cap) and
//! the text of the `viewers` broadcast ([`VIEWERS_FRAME`]); and what several scripts share
//! with each other (how much of the event and bus streams they keep). Each is rendered
//! into the script text once, when the store (or the bus) connects.
//!
//! A script names each value as `${NAME}`. Rendering the text rather than passing the
//! values as arguments keeps a claim batch's arguments as they were (nothing more per claim
//! on the hot path), and the script's SHA, under which Redis caches it, then names its
//! rules too: a node built with other rules loads a script of its own instead of running
//! another node's.

use dropwire_core::claim::{
    FEWEST_CLAIM_POINTS, FIRST_CLAIM_POINTS, POINTS_PER_RANK, REFUSED_RIDS_KEPT,
};
use dropwire_core::protocol::VIEWERS_FRAME;

/// Entries of a drop's `events` stream kept (about: `XADD MAXLEN ~`).
const EVENTS_KEPT: u32 = 10_000;
/// Broadcasts of a drop's `bus` stream kept for gap filling (about: `XADD MAXLEN ~`).
const BUS_KEPT: u32 = 4096;

/// Every value a script may name, as Lua source.
fn values() -> Vec<(String, String)> {
    let numbers: [(&str, u64); 6] = [
        ("FIRST_CLAIM_POINTS", FIRST_CLAIM_POINTS.into()),
        ("POINTS_PER_RANK", POINTS_PER_RANK.into()),
        ("FEWEST_CLAIM_POINTS", FEWEST_CLAIM_POINTS.into()),
        ("REFUSED_RIDS_KEPT", REFUSED_RIDS_KEPT as u64),
        ("EVENTS_KEPT", EVENTS_KEPT.into()),
        ("BUS_KEPT", BUS_KEPT.into()),
    ];
    let mut values: Vec<(String, String)> = numbers
        .iter()
        .map(|(name, n)| ((*name).to_owned(), n.to_string()))
        .collect();
    for (i, piece) in VIEWERS_FRAME.iter().enumerate() {
        // A long string: no escapes, and the pieces hold no `]==]`.
        values.push((format!("VIEWERS_FRAME_{i}"), format!("[==[{piece}]==]")));
    }
    values
}

/// `template` with each `${NAME}` replaced by the value of that name.
pub(super) fn render(template: &str) -> String {
    values()
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("${{{name}}}"), value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_get_every_value_and_keep_no_placeholder() {
        let templates = [include_str!("claim.lua"), include_str!("audience.lua")];
        for template in templates {
            let text = render(template);
            assert!(!text.contains("${"), "a placeholder is left:\n{text}");
        }
        for (name, _) in values() {
            let used = templates
                .iter()
                .any(|t| t.contains(&format!("${{{name}}}")));
            assert!(used, "{name} is used by no script");
        }
        for piece in VIEWERS_FRAME {
            assert!(!piece.contains("]==]"), "{piece}");
        }
        let claim = render(templates[0]);
        assert!(claim.contains(&format!("local REFUSED_PER_VIEWER = {REFUSED_RIDS_KEPT}\n")));
    }
}
