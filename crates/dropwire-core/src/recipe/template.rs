//! Placeholders in a template: finding them, substituting them within a budget, and naming
//! the parameter and cue behind an error in the drop made.

use serde_json::{Map, Value};

use super::{MAX_OUTPUT, ParamKind, ParamValue, invalid};
use crate::error::CoreError;

/// A placeholder found in a template: the parameter it names and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    /// The JSON path of the string holding it, from the recipe (`drop.inventory[0].name`).
    pub field: String,
}

/// One piece of a string: literal text or a placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Splits `s` into text and placeholders (`{{ name }}`); any other `{{` is text.
fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut text_start = 0;
    let mut offset = 0;
    while let Some(at) = rest.find("{{") {
        let after = &rest[at + 2..];
        let inner = after.trim_start_matches(' ');
        let name_len = inner
            .bytes()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
            .count();
        let tail = inner[name_len..].trim_start_matches(' ');
        let name = &inner[..name_len];
        if super::valid_name(name) && tail.starts_with("}}") {
            let start = offset + at;
            if start > text_start {
                out.push(Piece::Text(&s[text_start..start]));
            }
            out.push(Piece::Param(name));
            let consumed = rest.len() - tail.len() + 2;
            offset += consumed;
            rest = &rest[consumed..];
            text_start = offset;
        } else {
            offset += at + 1;
            rest = &rest[at + 1..];
        }
    }
    if text_start < s.len() {
        out.push(Piece::Text(&s[text_start..]));
    }
    out
}

fn walk<'a>(v: &'a Value, path: &mut String, f: &mut dyn FnMut(&str, &'a str)) {
    match v {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, f);
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                walk(item, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Every placeholder of `template` (a recipe's `drop`), in document order.
pub fn placeholders(template: &Value) -> Vec<Placeholder> {
    let mut found = Vec::new();
    walk(template, &mut "drop".to_owned(), &mut |path, s| {
        for piece in pieces(s) {
            if let Piece::Param(name) = piece {
                found.push(Placeholder {
                    name: name.to_owned(),
                    field: path.to_owned(),
                });
            }
        }
    });
    found
}

/// `template` with every placeholder replaced, or an error once the text made passes
/// [`MAX_OUTPUT`] bytes.
pub(super) fn substitute(
    template: &Value,
    values: &[(&str, ParamKind, ParamValue)],
) -> Result<Value, CoreError> {
    let mut budget = MAX_OUTPUT;
    subst(template, values, &mut budget, &mut "drop".to_owned())
}

fn spend(budget: &mut usize, n: usize) -> Result<(), CoreError> {
    *budget = budget.checked_sub(n).ok_or_else(|| {
        invalid(
            "params",
            format!("the drop made would hold more than {MAX_OUTPUT} bytes of text"),
        )
    })?;
    Ok(())
}

fn subst(
    v: &Value,
    values: &[(&str, ParamKind, ParamValue)],
    budget: &mut usize,
    path: &mut String,
) -> Result<Value, CoreError> {
    Ok(match v {
        Value::String(s) => {
            let pieces = pieces(s);
            let lookup = |name: &str| {
                values
                    .iter()
                    .find(|(n, ..)| *n == name)
                    .ok_or_else(|| invalid(path.clone(), format!("unknown parameter \"{name}\"")))
            };
            if let [Piece::Param(name)] = pieces.as_slice() {
                let (_, kind, value) = lookup(name)?;
                if let (ParamKind::Integer, ParamValue::Integer(n)) = (kind, value) {
                    spend(budget, 8)?;
                    return Ok(Value::from(*n));
                }
            }
            let mut out = String::new();
            for piece in pieces {
                let text = match piece {
                    Piece::Text(t) => t.to_owned(),
                    Piece::Param(name) => lookup(name)?.2.as_text(),
                };
                spend(budget, text.len())?;
                out.push_str(&text);
            }
            Value::String(out)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(subst(item, values, budget, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, item) in fields {
                spend(budget, k.len())?;
                let len = path.len();
                path.push('.');
                path.push_str(k);
                out.insert(k.clone(), subst(item, values, budget, path)?);
                path.truncate(len);
            }
            Value::Object(out)
        }
        other => {
            spend(budget, 8)?;
            other.clone()
        }
    })
}

/// The value of `template` at `path` (`script.cues[2].sku`), if there is one.
fn at<'a>(template: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = template;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            v = v.get(key)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            v = v.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(v)
}

/// The error for a drop made from `template` that breaks a rule at `field` (a path in the
/// drop): the field as a path in the recipe (`drop.…`), the message naming the cue
/// (`cue 3 (reveal): …`) and the parameters whose values are there.
pub(super) fn blame(template: &Value, field: &str, message: &str) -> CoreError {
    let field = field.trim_start_matches('.');
    let mut message = message.to_owned();
    if let Some(rest) = field.strip_prefix("script.cues[")
        && let Some(n) = rest.split(']').next().and_then(|n| n.parse::<usize>().ok())
    {
        let kind = at(template, &format!("script.cues[{n}].type"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let bare = message
            .strip_prefix(&format!("{kind} cue: "))
            .unwrap_or(&message)
            .to_owned();
        message = format!("cue {n} ({kind}): {bare}");
    }
    if let Some(Value::String(s)) = at(template, field) {
        let names: Vec<String> = pieces(s)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Param(name) => Some(format!("\"{name}\"")),
                Piece::Text(_) => None,
            })
            .collect();
        if !names.is_empty() {
            let noun = if names.len() == 1 {
                "parameter"
            } else {
                "parameters"
            };
            message = format!("{message} (from {noun} {})", names.join(", "));
        }
    }
    let field = if field.is_empty() {
        "drop".to_owned()
    } else {
        format!("drop.{field}")
    };
    invalid(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_tell_placeholders_from_text() {
        assert_eq!(
            pieces("a {{ item }} and {{x}}{{"),
            vec![
                Piece::Text("a "),
                Piece::Param("item"),
                Piece::Text(" and "),
                Piece::Param("x"),
                Piece::Text("{{"),
            ]
        );
        assert_eq!(
            pieces("{{{stock}}}"),
            vec![Piece::Text("{"), Piece::Param("stock"), Piece::Text("}")]
        );
        assert_eq!(
            pieces("{{Item}} {{9a}} {{}}"),
            vec![Piece::Text("{{Item}} {{9a}} {{}}")]
        );
        assert_eq!(pieces(""), vec![]);
        assert_eq!(
            pieces("é{{a}}é"),
            vec![Piece::Text("é"), Piece::Param("a"), Piece::Text("é")]
        );
    }

    #[test]
    fn paths_resolve() {
        let t = serde_json::json!({"script": {"cues": [{"type": "intro"}, {"type": "reveal"}]}});
        assert_eq!(at(&t, "script.cues[1].type"), Some(&Value::from("reveal")));
        assert_eq!(at(&t, "script.cues[2].type"), None);
        assert_eq!(at(&t, ""), Some(&t));
    }
}
