use serde_json::{Map, Value, json};

use super::*;
use crate::drop::DropKind;

fn recipe() -> RecipeSpec {
    serde_json::from_value(json!({
        "name": "Single item, 10 minutes",
        "params": [
            {"name": "item", "description": "What is sold"},
            {"name": "price_cents", "type": "integer"},
            {"name": "stock", "type": "integer", "default": 20}
        ],
        "drop": {
            "title": "{{item}} — live",
            "kind": "drop",
            "inventory": [{"sku": "item", "name": "{{ item }}", "price_cents": "{{price_cents}}", "stock": "{{stock}}"}],
            "script": {"duration_s": 600, "cues": [
                {"at_s": 0, "type": "intro", "title": "Only {{stock}} made of {{item}}"},
                {"at_s": 90, "type": "reveal", "sku": "item"},
                {"at_s": 600, "type": "close"}
            ]}
        }
    }))
    .unwrap()
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn refusal(r: &RecipeSpec, given: Value) -> (String, String) {
    match r.make_drop(&params(given)).unwrap_err() {
        CoreError::Invalid { field, message } => (field, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parameters_are_substituted_as_text_and_as_numbers() {
    let r = recipe();
    r.validate().unwrap();
    let spec = r
        .make_drop(&params(json!({"item": "Blue bowl", "price_cents": 4500})))
        .unwrap();
    assert_eq!(spec.title, "Blue bowl — live");
    assert_eq!(spec.kind, DropKind::Drop);
    assert_eq!(spec.inventory[0].name, "Blue bowl");
    assert_eq!(spec.inventory[0].price_cents, 4500);
    assert_eq!(spec.inventory[0].stock, 20, "the default");
    assert_eq!(
        spec.script.cues[0].title.as_deref(),
        Some("Only 20 made of Blue bowl")
    );
    let spec = r
        .make_drop(&params(
            json!({"item": "x", "price_cents": 100.0, "stock": 3}),
        ))
        .unwrap();
    assert_eq!(
        (spec.inventory[0].price_cents, spec.inventory[0].stock),
        (100, 3)
    );
}

#[test]
fn errors_name_the_parameter_or_the_cue() {
    let r = recipe();
    assert_eq!(
        refusal(&r, json!({"price_cents": 1})),
        ("params.item".into(), "missing parameter \"item\"".into())
    );
    let (field, message) = refusal(&r, json!({"item": "a", "price_cents": 1, "colour": "red"}));
    assert_eq!(field, "params.colour");
    assert!(
        message.starts_with("unknown parameter \"colour\""),
        "{message}"
    );
    let (field, message) = refusal(&r, json!({"item": "a", "price_cents": "cheap"}));
    assert_eq!(
        (field.as_str(), message.as_str()),
        (
            "params.price_cents",
            "parameter \"price_cents\": must be an integer"
        )
    );
    let (field, message) = refusal(
        &r,
        json!({"item": "a", "price_cents": 1, "stock": 2_000_000}),
    );
    assert_eq!(field, "drop.inventory[0].stock");
    assert!(
        message.contains("at most 1000000") && message.contains("(from parameter \"stock\")"),
        "{message}"
    );
    let (field, message) = refusal(&r, json!({"item": "a", "price_cents": -5}));
    assert_eq!(field, "drop.inventory[0].price_cents");
    assert!(message.contains("price_cents"), "{message}");
    let (field, _) = refusal(&r, json!({"item": "", "price_cents": 1}));
    assert_eq!(field, "drop.inventory[0].name");
    // A cue at fault is named with its place and type.
    let mut bad = recipe();
    bad.drop["script"]["cues"][1]["sku"] = json!("nope");
    let (field, message) = refusal(&bad, json!({"item": "a", "price_cents": 1}));
    assert_eq!(field, "drop.script.cues[1].sku");
    assert!(
        message.starts_with("cue 1 (reveal): unknown sku \"nope\""),
        "{message}"
    );
    let mut late = recipe();
    late.drop["script"]["cues"][1]["at_s"] = json!("{{stock}}");
    let (field, message) = refusal(&late, json!({"item": "a", "price_cents": 1, "stock": 900}));
    assert_eq!(field, "drop.script.cues[1].at_s");
    assert!(
        message.starts_with("cue 1 (reveal): ")
            && message.contains("past the end")
            && message.ends_with("(from parameter \"stock\")"),
        "{message}"
    );
}

#[test]
fn saving_checks_declarations_and_the_sample_drop() {
    let mut r = recipe();
    r.params.push(RecipeParam {
        name: "unused".into(),
        kind: ParamKind::String,
        description: String::new(),
        default: None,
    });
    let e = r.validate().unwrap_err().to_string();
    assert!(
        e.contains("params[3]") && e.contains("\"unused\" is not used"),
        "{e}"
    );
    let mut r = recipe();
    r.drop["script"]["cues"][0]["body"] = json!("{{colour}}");
    let e = r.validate().unwrap_err().to_string();
    assert!(
        e.starts_with("drop.script.cues[0].body: unknown parameter \"colour\""),
        "{e}"
    );
    let mut r = recipe();
    r.params[2].default = Some(json!("many"));
    assert!(
        r.validate()
            .unwrap_err()
            .to_string()
            .contains("params[2].default")
    );
    let mut r = recipe();
    r.params[1].name = "Price".into();
    assert!(
        r.validate()
            .unwrap_err()
            .to_string()
            .contains("params[1].name")
    );
    let mut r = recipe();
    r.params.push(r.params[0].clone());
    assert!(
        r.validate()
            .unwrap_err()
            .to_string()
            .contains("declared twice")
    );
    let mut r = recipe();
    r.drop["starts_at"] = json!("2030-01-01T00:00:00Z");
    assert!(
        r.validate()
            .unwrap_err()
            .to_string()
            .starts_with("drop.starts_at")
    );
    let mut r = recipe();
    r.drop["script"]["cues"][2]["type"] = json!("reveal");
    let e = r.validate().unwrap_err().to_string();
    assert!(e.contains("cue 2 (reveal)"), "{e}");
    let mut r = recipe();
    r.drop = json!([]);
    assert!(r.validate().is_err());
}

#[test]
fn substitution_is_bounded() {
    let mut r = recipe();
    let many = "{{item}}".repeat(300);
    r.drop["script"]["cues"][0]["body"] = json!(many);
    let long = "x".repeat(MAX_VALUE);
    let (field, message) = refusal(&r, json!({"item": long, "price_cents": 1}));
    assert_eq!(field, "params");
    assert!(message.contains("more than"), "{message}");
    let (field, _) = refusal(
        &r,
        json!({"item": "x".repeat(MAX_VALUE + 1), "price_cents": 1}),
    );
    assert_eq!(field, "params.item");
}

#[test]
fn a_drop_that_starts_by_itself_lifts_into_a_recipe_without_its_date() {
    let mut spec: DropSpec =
        serde_json::from_str(include_str!("../../../../examples/speckled-mugs.json")).unwrap();
    spec.starts_at = Some(crate::StartsAt(1_900_000_000_000));
    spec.auto_start = true;
    spec.validate().unwrap();
    let r = lift(&spec, "Mugs".into(), String::new());
    r.validate().unwrap();
    let made = r.make_drop(&Map::new()).unwrap();
    assert_eq!((made.starts_at, made.auto_start), (None, false));
}

#[test]
fn a_lifted_drop_makes_the_same_drop() {
    let spec: DropSpec =
        serde_json::from_str(include_str!("../../../../examples/speckled-mugs.json")).unwrap();
    let r = lift(&spec, "Mugs".into(), String::new());
    r.validate().unwrap();
    let names: Vec<&str> = r.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "title",
            "item_1",
            "price_cents_1",
            "stock_1",
            "item_2",
            "price_cents_2",
            "stock_2"
        ]
    );
    let made = r.make_drop(&Map::new()).unwrap();
    assert_eq!(
        made,
        DropSpec {
            id: None,
            starts_at: None,
            ..spec.clone()
        }
    );
    let made = r
        .make_drop(&params(json!({"stock_2": 5, "title": "Batch 13"})))
        .unwrap();
    assert_eq!(
        (made.inventory[1].stock, made.title.as_str()),
        (5, "Batch 13")
    );
    let one = DropSpec {
        inventory: spec.inventory[..1].to_vec(),
        ..spec.clone()
    };
    let one = DropSpec {
        script: crate::script::Script {
            cues: one
                .script
                .cues
                .iter()
                .filter(|c| c.sku.as_deref() != Some("mug-speckled-500"))
                .cloned()
                .collect(),
            ..one.script.clone()
        },
        ..one
    };
    let r = lift(&one, "One".into(), String::new());
    r.validate().unwrap();
    let names: Vec<&str> = r.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["title", "item", "price_cents", "stock"]);
}
