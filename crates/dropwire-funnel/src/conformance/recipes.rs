//! Recipes: created once per id, versioned by each change (a stale change is refused),
//! kept per maker, deleted; the shipped ones loaded once per ledger.

use dropwire_core::recipe::RecipeSpec;
use serde_json::json;

use super::{T0, fresh};
use crate::Ledger;

fn spec(name: &str, stock: u32) -> RecipeSpec {
    serde_json::from_value(json!({
        "name": name,
        "params": [{"name": "item"}],
        "drop": {"title": "{{item}}", "inventory": [{"sku": "a", "name": "{{item}}", "price_cents": 100, "stock": stock}],
                 "script": {"duration_s": 60, "cues": [{"at_s": 0, "type": "reveal", "sku": "a"}]}}
    }))
    .expect("a recipe")
}

pub async fn recipes_are_versioned_and_kept_per_maker(ledger: &Ledger) {
    let maker = fresh("maker");
    let other = fresh("other");
    let id = fresh("bowls");
    let made = ledger
        .create_recipe(&maker, &id, &spec("Bowls", 5), T0)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(
        (made.version, made.created_ms, made.updated_ms),
        (1, T0, T0)
    );
    assert_eq!(
        (made.maker.as_str(), made.name.as_str()),
        (maker.as_str(), "Bowls")
    );
    assert_eq!(made.drop["inventory"][0]["stock"], 5);
    assert_eq!(made.spec().id.as_deref(), Some(id.as_str()));
    assert!(
        ledger
            .create_recipe(&maker, &id, &spec("Again", 1), T0)
            .await
            .expect("create")
            .is_none(),
        "the id is taken"
    );
    assert_eq!(ledger.recipe(&other, &id).await.expect("read"), None);
    assert!(ledger.recipes(&other).await.expect("list").is_empty());
    let changed = ledger
        .replace_recipe(&maker, &id, 1, &spec("Bowls v2", 9), T0 + 5)
        .await
        .expect("replace")
        .expect("at version 1");
    assert_eq!(
        (changed.version, changed.created_ms, changed.updated_ms),
        (2, T0, T0 + 5)
    );
    assert_eq!(changed.drop["inventory"][0]["stock"], 9);
    assert!(
        ledger
            .replace_recipe(&maker, &id, 1, &spec("stale", 1), T0 + 6)
            .await
            .expect("replace")
            .is_none(),
        "a change from version 1 after version 2 is refused"
    );
    assert!(
        ledger
            .replace_recipe(&other, &id, 2, &spec("not mine", 1), T0 + 6)
            .await
            .expect("replace")
            .is_none()
    );
    // Two changes from the same version at once: one wins.
    let (sa, sb) = (spec("a", 1), spec("b", 1));
    let (a, b) = tokio::join!(
        ledger.replace_recipe(&maker, &id, 2, &sa, T0 + 7),
        ledger.replace_recipe(&maker, &id, 2, &sb, T0 + 7)
    );
    let won = [a.expect("a"), b.expect("b")];
    assert_eq!(won.iter().filter(|r| r.is_some()).count(), 1, "{won:?}");
    let second = fresh("second");
    ledger
        .create_recipe(&maker, &second, &spec("Second", 1), T0 + 1)
        .await
        .expect("create")
        .expect("new");
    let list = ledger.recipes(&maker).await.expect("list");
    assert_eq!(
        list.iter()
            .map(|r| (r.id.as_str(), r.version))
            .collect::<Vec<_>>(),
        [(id.as_str(), 3), (second.as_str(), 1)],
        "oldest first"
    );
    assert!(!ledger.delete_recipe(&other, &id).await.expect("delete"));
    assert!(ledger.delete_recipe(&maker, &id).await.expect("delete"));
    assert!(!ledger.delete_recipe(&maker, &id).await.expect("again"));
    assert_eq!(ledger.recipe(&maker, &id).await.expect("read"), None);
}

pub async fn shipped_recipes_load_once(ledger: &Ledger) {
    let maker = fresh("maker");
    let shipped: Vec<(String, RecipeSpec)> = ["one", "two", "three"]
        .iter()
        .map(|n| (format!("{n}-{maker}"), spec(n, 1)))
        .collect();
    // Several nodes starting at once: the recipes are loaded by one of them.
    let loads = seed_at_once(ledger, &maker, &shipped).await;
    assert_eq!(loads.iter().sum::<usize>(), 3, "{loads:?}");
    assert_eq!(ledger.recipes(&maker).await.expect("list").len(), 3);
    assert!(
        ledger
            .delete_recipe(&maker, &shipped[1].0)
            .await
            .expect("delete")
    );
    assert_eq!(
        ledger
            .seed_recipes(&maker, &shipped, T0 + 9)
            .await
            .expect("seed"),
        0,
        "a deleted shipped recipe does not come back"
    );
    let left = ledger.recipes(&maker).await.expect("list");
    assert_eq!(
        left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [shipped[0].0.as_str(), shipped[2].0.as_str()],
        "in the order shipped"
    );
    assert!(left.iter().all(|r| r.version == 1 && r.created_ms >= T0));
}

async fn seed_at_once(
    ledger: &Ledger,
    maker: &str,
    shipped: &[(String, RecipeSpec)],
) -> Vec<usize> {
    let (a, b, c) = tokio::join!(
        ledger.seed_recipes(maker, shipped, T0),
        ledger.seed_recipes(maker, shipped, T0),
        ledger.seed_recipes(maker, shipped, T0)
    );
    vec![a.expect("seed"), b.expect("seed"), c.expect("seed")]
}
