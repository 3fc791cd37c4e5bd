//! A drop turned into a recipe: its create body, with the title and each SKU's name, price
//! and stock lifted into parameters whose defaults are the drop's own values (so the recipe
//! with no parameters makes the same drop again).

use serde_json::Value;

use super::{ParamKind, RecipeParam, RecipeSpec};
use crate::drop::DropSpec;

/// Drops with more SKUs than this keep their inventory as it is (only the title is lifted).
pub const MAX_LIFTED_SKUS: usize = 10;

fn param(name: String, kind: ParamKind, description: String, default: Value) -> RecipeParam {
    RecipeParam {
        name,
        kind,
        description,
        default: Some(default),
    }
}

/// The recipe of `spec` named `name`: `title` → `{{title}}`; for a drop of one SKU its
/// `name`, `price_cents` and `stock` → `{{item}}`, `"{{price_cents}}"`, `"{{stock}}"`; for
/// 2–10 SKUs the same with the SKU's place (`item_2`, `price_cents_2`, `stock_2`).
pub fn lift(spec: &DropSpec, name: String, description: String) -> RecipeSpec {
    let mut template = spec.clone();
    // What belongs to one drop's date: each drop made from the recipe gets its own.
    template.id = None;
    template.starts_at = None;
    template.auto_start = false;
    let mut params = vec![param(
        "title".into(),
        ParamKind::String,
        "The drop's title".into(),
        Value::from(spec.title.clone()),
    )];
    let mut drop = serde_json::to_value(&template).unwrap_or(Value::Null);
    drop["title"] = Value::from("{{title}}");
    let n = spec.inventory.len();
    if n <= MAX_LIFTED_SKUS {
        for (i, item) in spec.inventory.iter().enumerate() {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("_{}", i + 1)
            };
            let sku = &item.sku;
            let lifted = [
                (
                    "item",
                    ParamKind::String,
                    format!("The name of {sku}"),
                    Value::from(item.name.clone()),
                    "name",
                ),
                (
                    "price_cents",
                    ParamKind::Integer,
                    format!("The price of {sku}, in cents"),
                    Value::from(item.price_cents),
                    "price_cents",
                ),
                (
                    "stock",
                    ParamKind::Integer,
                    format!("How many of {sku} there are"),
                    Value::from(item.stock),
                    "stock",
                ),
            ];
            for (base, kind, description, default, field) in lifted {
                let pname = format!("{base}{suffix}");
                drop["inventory"][i][field] = Value::from(format!("{{{{{pname}}}}}"));
                params.push(param(pname, kind, description, default));
            }
        }
    }
    RecipeSpec {
        id: None,
        name,
        description,
        params,
        drop,
    }
}
