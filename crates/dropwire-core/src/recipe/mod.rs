//! Recipes: reusable drop templates with named parameters.
//!
//! A recipe is a drop's create body (`drop`: title, kind, currency, hold time, inventory,
//! script with cue times relative to the start, early access, follow-up, nurture — never
//! `id` or `starts_at`, which each drop made from it gets) in which strings may hold
//! placeholders `{{name}}` of the recipe's declared parameters.
//!
//! # Substitution rules
//!
//! - A placeholder is `{{`, optional spaces, a parameter name (`[a-z][a-z0-9_]`, 1–32),
//!   optional spaces, `}}`. Any other `{{` is literal text. Object keys are never
//!   substituted.
//! - A parameter is `string` or `integer`. A JSON string that is exactly one placeholder of
//!   an `integer` parameter (`"stock": "{{stock}}"`) becomes that JSON number: this is how a
//!   number is parameterised. Everywhere else a placeholder is replaced by its value as
//!   text (`"Only {{stock}} made"` → `"Only 12 made"`).
//! - A parameter with a `default` may be left out; one without is required
//!   (`missing parameter "item"`). A parameter the recipe does not declare is refused
//!   (`unknown parameter "colour"`), and so is a declared parameter the template never uses.
//! - The drop made is validated exactly like a hand-written one; an error names the cue
//!   (`cue 3 (reveal): …`) and, when the value came from a parameter, the parameter.
//! - Cost is bounded: a template of at most [`MAX_TEMPLATE`] bytes, [`MAX_PARAMS`]
//!   parameters, string values of at most [`MAX_VALUE`] characters, and a made drop of at
//!   most [`MAX_OUTPUT`] bytes of text.
//!
//! A recipe is checked when it is saved: the template with every parameter set to its
//! default (or, without one, to a sample: the parameter's name for a string, 1 for an
//! integer) must make a valid drop.

mod lift;
mod template;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::drop::DropSpec;
use crate::error::CoreError;
use crate::ids::DropId;

pub use lift::lift;
pub use template::{Placeholder, placeholders};

/// The most parameters one recipe declares.
pub const MAX_PARAMS: usize = 40;
/// The largest template (`drop`), serialized, in bytes.
pub const MAX_TEMPLATE: usize = 64 * 1024;
/// The longest string parameter value, in characters.
pub const MAX_VALUE: usize = 1000;
/// The most text a made drop may hold, in bytes (strings after substitution).
pub const MAX_OUTPUT: usize = 256 * 1024;
/// The longest recipe name, in characters.
pub const MAX_NAME: usize = 200;
/// The longest recipe description, in characters.
pub const MAX_DESCRIPTION: usize = 2000;

/// The type of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Any text of at most 1000 characters.
    #[default]
    String,
    /// A whole number; as a whole JSON string value (`"{{stock}}"`) it becomes a number.
    Integer,
}

/// A named parameter of a recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecipeParam {
    /// `[a-z][a-z0-9_]*`, 1–32 characters; written `{{name}}` in the template.
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[a-z][a-z0-9_]{0,31}$"))]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ParamKind,
    /// What the parameter is for, shown in the panel's form.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[cfg_attr(feature = "utoipa", schema(max_length = 200))]
    pub description: String,
    /// The value when a drop is made without it (a string or an integer, as `type` says);
    /// without a default the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// The body of `POST /api/v1/recipes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    /// `[a-z0-9-]`, 1–64; made from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[a-z0-9-]{1,64}$"))]
    pub id: Option<String>,
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(max_length = 2000))]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(max_items = 40))]
    pub params: Vec<RecipeParam>,
    /// The drop's create body (without `id` and `starts_at`) with `{{name}}` placeholders.
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub drop: Value,
}

/// Which recipe (and which version of it) a drop was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct RecipeRef {
    pub id: String,
    pub version: u32,
}

/// A parameter's value, checked against its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Text(String),
    Integer(i64),
}

impl ParamValue {
    fn as_text(&self) -> String {
        match self {
            ParamValue::Text(s) => s.clone(),
            ParamValue::Integer(n) => n.to_string(),
        }
    }

    /// `value` as a parameter of `kind`, or why not.
    fn read(kind: ParamKind, value: &Value) -> Result<ParamValue, String> {
        match (kind, value) {
            (ParamKind::String, Value::String(s)) => {
                if s.chars().count() > MAX_VALUE {
                    Err(format!("longer than {MAX_VALUE} characters"))
                } else {
                    Ok(ParamValue::Text(s.clone()))
                }
            }
            (ParamKind::Integer, Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    // JSON Schema counts 2.0 as the integer 2.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                        .map(|f| f as i64)
                })
                .map(ParamValue::Integer)
                .ok_or_else(|| format!("{n} is not a whole number")),
            (ParamKind::String, _) => Err("must be a string".into()),
            (ParamKind::Integer, _) => Err("must be an integer".into()),
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl RecipeSpec {
    /// The recipe's id: the given one, or one made from the name and `suffix`.
    pub fn id_or(&self, suffix: &str) -> Result<String, CoreError> {
        match &self.id {
            Some(id) => DropId::parse(id).map(|id| id.to_string()).map_err(|_| {
                invalid(
                    "id",
                    format!("{id:?} is not a recipe id: use 1-64 characters of a-z, 0-9 and -"),
                )
            }),
            None => Ok(DropId::from_title(&self.name, suffix).to_string()),
        }
    }

    /// Checks the whole recipe: its name, parameters and template, and that the template
    /// makes a valid drop with the defaults (or samples).
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(id) = &self.id {
            self.id_or("").map_err(|_| {
                invalid(
                    "id",
                    format!("{id:?} is not a recipe id: use 1-64 characters of a-z, 0-9 and -"),
                )
            })?;
        }
        let n = self.name.chars().count();
        if n == 0 || n > MAX_NAME || self.name.trim().is_empty() {
            return Err(invalid("name", format!("must be 1-{MAX_NAME} characters")));
        }
        if self.description.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(
                "description",
                format!("at most {MAX_DESCRIPTION} characters"),
            ));
        }
        if self.params.len() > MAX_PARAMS {
            return Err(invalid(
                "params",
                format!("at most {MAX_PARAMS} parameters"),
            ));
        }
        let mut samples = Map::new();
        for (i, p) in self.params.iter().enumerate() {
            if !valid_name(&p.name) {
                return Err(invalid(
                    format!("params[{i}].name"),
                    format!(
                        "{:?} is not a parameter name: use a-z, then a-z, 0-9 or _ (1-32)",
                        p.name
                    ),
                ));
            }
            if samples.contains_key(&p.name) {
                return Err(invalid(
                    format!("params[{i}].name"),
                    format!("parameter \"{}\" is declared twice", p.name),
                ));
            }
            if p.description.chars().count() > 200 {
                return Err(invalid(
                    format!("params[{i}].description"),
                    "at most 200 characters",
                ));
            }
            let sample = match &p.default {
                Some(d) => {
                    ParamValue::read(p.kind, d).map_err(|m| {
                        invalid(
                            format!("params[{i}].default"),
                            format!("parameter \"{}\": default {m}", p.name),
                        )
                    })?;
                    d.clone()
                }
                None => match p.kind {
                    ParamKind::String => Value::from(p.name.clone()),
                    ParamKind::Integer => Value::from(1),
                },
            };
            samples.insert(p.name.clone(), sample);
        }
        let Value::Object(fields) = &self.drop else {
            return Err(invalid(
                "drop",
                "must be an object: a drop's create body with {{name}} placeholders",
            ));
        };
        for key in ["id", "starts_at"] {
            if fields.contains_key(key) {
                return Err(invalid(
                    format!("drop.{key}"),
                    format!("a recipe has no {key}: each drop made from it gets its own"),
                ));
            }
        }
        let size = serde_json::to_vec(&self.drop).map_or(usize::MAX, |v| v.len());
        if size > MAX_TEMPLATE {
            return Err(invalid(
                "drop",
                format!("the template is {size} bytes, more than {MAX_TEMPLATE}"),
            ));
        }
        let mut used = std::collections::HashSet::new();
        for ph in placeholders(&self.drop) {
            if !self.params.iter().any(|p| p.name == ph.name) {
                return Err(invalid(
                    ph.field,
                    format!("unknown parameter \"{}\": declare it in params", ph.name),
                ));
            }
            used.insert(ph.name);
        }
        for (i, p) in self.params.iter().enumerate() {
            if !used.contains(&p.name) {
                return Err(invalid(
                    format!("params[{i}]"),
                    format!("parameter \"{}\" is not used in the drop template", p.name),
                ));
            }
        }
        self.make_drop(&samples).map(|_| ())
    }

    /// The drop this recipe makes with `given` parameters: substituted, read as a create
    /// body and validated like a hand-written one (without `id` and `starts_at`, which the
    /// caller sets).
    pub fn make_drop(&self, given: &Map<String, Value>) -> Result<DropSpec, CoreError> {
        for name in given.keys() {
            if !self.params.iter().any(|p| &p.name == name) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(invalid(
                    format!("params.{name}"),
                    format!(
                        "unknown parameter \"{name}\"; this recipe has: {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        let mut values = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let value = match (given.get(&p.name), &p.default) {
                (Some(v), _) | (None, Some(v)) => v,
                (None, None) => {
                    return Err(invalid(
                        format!("params.{}", p.name),
                        format!("missing parameter \"{}\"", p.name),
                    ));
                }
            };
            let value = ParamValue::read(p.kind, value).map_err(|m| {
                invalid(
                    format!("params.{}", p.name),
                    format!("parameter \"{}\": {m}", p.name),
                )
            })?;
            values.push((p.name.as_str(), p.kind, value));
        }
        let made = template::substitute(&self.drop, &values)?;
        let spec: DropSpec = serde_path_to_error::deserialize(&made).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            template::blame(&self.drop, &path, &message)
        })?;
        if spec.id.is_some() || spec.starts_at.is_some() {
            return Err(invalid("drop", "a recipe has no id or starts_at"));
        }
        spec.validate().map_err(|e| match e {
            CoreError::Invalid { field, message } => template::blame(&self.drop, &field, &message),
            other => other,
        })?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests;
