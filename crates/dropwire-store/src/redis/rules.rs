//! What the Redis store's scripts share with the rest of dropwire, from `dropwire-core`:
//! the claim rules of [`dropwire_core::claim`] (points per rank, the refused-rid cap) and
//! the text of the `viewers` broadcast ([`VIEWERS_FRAME`]), rendered into the script text
//! once, when the store (or the bus) connects.
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

/// Every value a script may name, as Lua source.
fn values() -> Vec<(String, String)> {
    let mut values = vec![
        (
            "FIRST_CLAIM_POINTS".to_owned(),
            FIRST_CLAIM_POINTS.to_string(),
        ),
        ("POINTS_PER_RANK".to_owned(), POINTS_PER_RANK.to_string()),
        (
            "FEWEST_CLAIM_POINTS".to_owned(),
            FEWEST_CLAIM_POINTS.to_string(),
        ),
        (
            "REFUSED_RIDS_KEPT".to_owned(),
            REFUSED_RIDS_KEPT.to_string(),
        ),
    ];
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
