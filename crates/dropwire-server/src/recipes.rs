//! The recipes shipped with dropwire (`examples/recipes/*.json`, embedded at build time),
//! loaded into the ledger on the first start of a hub on it — once: a maker who deletes
//! one never gets it back on a later start (`Ledger::seed_recipes`).

use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_core::recipe::RecipeSpec;

use crate::app::AppState;

/// The shipped recipes' files, by name.
pub const SHIPPED: [(&str, &str); 3] = [
    (
        "single-item-10min.json",
        include_str!("../../../examples/recipes/single-item-10min.json"),
    ),
    (
        "workshop-12min.json",
        include_str!("../../../examples/recipes/workshop-12min.json"),
    ),
    (
        "demo-6min.json",
        include_str!("../../../examples/recipes/demo-6min.json"),
    ),
];

/// The shipped recipes with their ids (a file that is not a valid recipe is a bug, caught
/// by this module's test; it is skipped with an error in the log).
pub fn shipped() -> Vec<(String, RecipeSpec)> {
    SHIPPED
        .iter()
        .filter_map(|(file, text)| {
            let read = serde_json::from_str::<RecipeSpec>(text)
                .map_err(|e| e.to_string())
                .and_then(|spec| {
                    spec.validate().map_err(|e| e.to_string())?;
                    let id = spec.id_or("").map_err(|e| e.to_string())?;
                    Ok((id, spec))
                });
            read.map_err(|e| tracing::error!(file, error = %e, "a shipped recipe is invalid"))
                .ok()
        })
        .collect()
}

/// Loads the shipped recipes if this ledger never had them (a no-op without a ledger). A
/// failure is logged and tried again at the next start.
pub async fn load_shipped(state: &AppState) {
    let Ok(ledger) = state.ledger() else { return };
    match ledger
        .seed_recipes(DEFAULT_MAKER, &shipped(), state.clock.now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(recipes = n, "the shipped recipes were loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the shipped recipes; the next start tries again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_recipe_makes_a_drop_with_its_defaults() {
        let all = shipped();
        assert_eq!(all.len(), SHIPPED.len());
        let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["single-item-10min", "workshop-12min", "demo-6min"]);
        for (_, spec) in &all {
            let drop = spec.make_drop(&serde_json::Map::new()).unwrap();
            assert!(drop.script.duration_s >= 360, "{}", spec.name);
        }
    }
}
