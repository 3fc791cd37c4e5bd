//! Co-ops: neighbouring makers grouped to share one launch calendar. The rules, pure: what a
//! co-op's id, name and member list may be ([`CoopSpec::validate`]), and which of its drops
//! collide ([`overlaps`]).
//!
//! **Overlaps.** A drop's live window is `[start, start + script length)`, half-open: a drop
//! that starts the millisecond another ends does not collide with it, and a drop with an
//! empty script collides with nothing. Two drops overlap when their windows intersect; the
//! overlap is the intersection.

use serde::Deserialize;

use crate::error::CoreError;
use crate::ids::DropId;

/// The longest co-op name, in characters.
pub const MAX_NAME: usize = 200;
/// The most makers one co-op groups.
pub const MAX_MAKERS: usize = 50;

/// `POST /api/v1/coops`: a co-op and its first members.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CoopSpec {
    /// The co-op's id; made from its name when absent.
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[a-z0-9-]{1,64}$"))]
    pub id: Option<String>,
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// The member makers' ids, at most 50 (a repeated one is kept once).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(max_items = 50, value_type = Vec<MakerIdSchema>))]
    pub makers: Vec<String>,
}

/// A maker's id, as the OpenAPI document describes it (`MakerId`).
#[cfg(feature = "utoipa")]
#[derive(Debug)]
pub struct MakerIdSchema;

#[cfg(feature = "utoipa")]
impl utoipa::PartialSchema for MakerIdSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9-]{1,64}$"))
            .description(Some("A maker's id: 1-64 of a-z, 0-9 and -"))
            .into()
    }
}

#[cfg(feature = "utoipa")]
impl utoipa::ToSchema for MakerIdSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "MakerId".into()
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks an id (a co-op's or a maker's): 1-64 characters of a-z, 0-9 and `-`.
pub fn check_id(field: &str, what: &str, id: &str) -> Result<(), CoreError> {
    DropId::parse(id).map(|_| ()).map_err(|_| {
        invalid(
            field,
            format!("{id:?} is not a {what} id: use 1-64 characters of a-z, 0-9 and -"),
        )
    })
}

/// Checks a co-op name: 1-200 characters, not only spaces, no control characters.
pub fn check_name(name: &str) -> Result<(), CoreError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME || name.trim().is_empty() {
        return Err(invalid(
            "name",
            format!("give a name of 1-{MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "a name holds no control characters"));
    }
    Ok(())
}

/// The members as kept: at most [`MAX_MAKERS`] given, each checked, a repeated one kept
/// once, in the order given.
pub fn check_makers(makers: &[String]) -> Result<Vec<String>, CoreError> {
    if makers.len() > MAX_MAKERS {
        return Err(invalid(
            "makers",
            format!("at most {MAX_MAKERS} makers per co-op"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(makers.len());
    for (i, m) in makers.iter().enumerate() {
        check_id(&format!("makers[{i}]"), "maker", m)?;
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    Ok(out)
}

impl CoopSpec {
    /// The co-op's id: the given one, or one made from the name and `suffix`.
    pub fn id_or(&self, suffix: &str) -> Result<String, CoreError> {
        match &self.id {
            Some(id) => check_id("id", "co-op", id).map(|()| id.clone()),
            None => Ok(DropId::from_title(&self.name, suffix).to_string()),
        }
    }

    /// Checks the whole body; the members as kept (see [`check_makers`]).
    pub fn validate(&self) -> Result<Vec<String>, CoreError> {
        if let Some(id) = &self.id {
            check_id("id", "co-op", id)?;
        }
        check_name(&self.name)?;
        check_makers(&self.makers)
    }
}

/// A drop's live window, for [`overlaps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start_ms: u64,
    /// The script's length.
    pub duration_s: u32,
}

impl Slot {
    pub fn end_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(u64::from(self.duration_s) * 1000)
    }
}

/// Two slots whose windows intersect: their indices in the input (`a` starts first, or at
/// the same time with the lower index) and the intersection `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    pub a: usize,
    pub b: usize,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Every pair of `slots` whose live windows intersect, in order of `a`'s start, then `b`'s.
/// Costs O(n log n) plus the number of pairs.
pub fn overlaps(slots: &[Slot]) -> Vec<Overlap> {
    let mut order: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].duration_s > 0)
        .collect();
    order.sort_by_key(|&i| (slots[i].start_ms, i));
    let mut out = Vec::new();
    for (k, &a) in order.iter().enumerate() {
        let end_a = slots[a].end_ms();
        for &b in &order[k + 1..] {
            if slots[b].start_ms >= end_a {
                break;
            }
            out.push(Overlap {
                a,
                b,
                from_ms: slots[b].start_ms,
                to_ms: end_a.min(slots[b].end_ms()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start_s: u64, duration_s: u32) -> Slot {
        Slot {
            start_ms: start_s * 1000,
            duration_s,
        }
    }

    fn pairs(slots: &[Slot]) -> Vec<(usize, usize, u64, u64)> {
        overlaps(slots)
            .into_iter()
            .map(|o| (o.a, o.b, o.from_ms / 1000, o.to_ms / 1000))
            .collect()
    }

    #[test]
    fn windows_that_intersect_are_paired_with_their_intersection() {
        // 0-600, 300-900 (inside neither), 400-500 (inside both), 1000-1600 alone.
        let slots = [
            slot(0, 600),
            slot(300, 600),
            slot(400, 100),
            slot(1000, 600),
        ];
        assert_eq!(
            pairs(&slots),
            [(0, 1, 300, 600), (0, 2, 400, 500), (1, 2, 400, 500)]
        );
    }

    #[test]
    fn the_input_order_does_not_matter_and_a_starts_first() {
        let slots = [slot(1000, 600), slot(700, 600)];
        assert_eq!(pairs(&slots), [(1, 0, 1000, 1300)]);
        // Same start: the lower index first; the shorter window bounds the overlap.
        let slots = [slot(50, 10), slot(50, 600)];
        assert_eq!(pairs(&slots), [(0, 1, 50, 60)]);
    }

    #[test]
    fn touching_or_empty_windows_do_not_collide() {
        assert!(pairs(&[slot(0, 600), slot(600, 600)]).is_empty());
        assert!(pairs(&[slot(0, 600), slot(100, 0)]).is_empty());
        assert!(pairs(&[]).is_empty());
        assert!(pairs(&[slot(0, 60)]).is_empty());
        // A window at the end of time saturates rather than wrapping.
        let late = Slot {
            start_ms: u64::MAX - 10,
            duration_s: 60,
        };
        assert_eq!(
            overlaps(&[late, late]),
            [Overlap {
                a: 0,
                b: 1,
                from_ms: u64::MAX - 10,
                to_ms: u64::MAX
            }]
        );
    }

    #[test]
    fn a_co_op_body_is_checked_field_by_field() {
        let body = |v: serde_json::Value| serde_json::from_value::<CoopSpec>(v).expect("body");
        let ok = body(serde_json::json!({"name": "River studios", "makers": ["ana", "bo", "ana"]}));
        assert_eq!(ok.validate(), Ok(vec!["ana".into(), "bo".into()]));
        assert_eq!(ok.id_or("x1").as_deref(), Ok("river-studios-x1"));
        let field = |v: serde_json::Value| match body(v).validate() {
            Err(CoreError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(serde_json::json!({"name": " "})), "name");
        assert_eq!(field(serde_json::json!({"name": "x".repeat(201)})), "name");
        assert_eq!(field(serde_json::json!({"name": "a\u{7}"})), "name");
        assert_eq!(field(serde_json::json!({"id": "Big", "name": "a"})), "id");
        assert_eq!(
            field(serde_json::json!({"name": "a", "makers": ["ok", "Not OK"]})),
            "makers[1]"
        );
        let many: Vec<String> = (0..=MAX_MAKERS).map(|i| format!("m{i}")).collect();
        assert_eq!(
            field(serde_json::json!({"name": "a", "makers": many})),
            "makers"
        );
        let enough: Vec<String> = (0..MAX_MAKERS).map(|i| format!("m{i}")).collect();
        let ok = body(serde_json::json!({"name": "a", "makers": enough}));
        assert_eq!(ok.validate().map(|m| m.len()), Ok(MAX_MAKERS));
    }
}
