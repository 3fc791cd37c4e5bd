//! Recipes as the ledger keeps them: one row per recipe of a maker, its latest version
//! (`recipes`). The ledger is where a maker's configuration lives (webhook endpoints, the
//! nurture schedule), so recipes survive a restart and every hub node sharing the ledger
//! sees the same ones. Validation is the caller's (`dropwire_core::recipe`).

use dropwire_core::recipe::{RecipeParam, RecipeSpec};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

/// A stored recipe, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Recipe {
    pub id: String,
    /// The maker whose recipe it is.
    pub maker: String,
    /// 1 at creation, one more at each change.
    pub version: u32,
    pub name: String,
    pub description: String,
    pub params: Vec<RecipeParam>,
    /// The drop's create body (without `id` and `starts_at`) with `{{name}}` placeholders.
    #[cfg_attr(feature = "utoipa", schema(value_type = Object))]
    pub drop: Value,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl Recipe {
    /// The recipe as a create body (with its id).
    pub fn spec(&self) -> RecipeSpec {
        RecipeSpec {
            id: Some(self.id.clone()),
            name: self.name.clone(),
            description: self.description.clone(),
            params: self.params.clone(),
            drop: self.drop.clone(),
        }
    }
}

const COLUMNS: &str = "maker, id, version, body, created_ms, updated_ms";

/// The settings key that says a maker's shipped recipes were loaded (once, ever).
const SEEDED: &str = "recipes.seeded";

fn body(spec: &RecipeSpec) -> Result<String, FunnelError> {
    let body = RecipeSpec {
        id: None,
        ..spec.clone()
    };
    serde_json::to_string(&body).map_err(|e| FunnelError::corrupt("recipe", e))
}

fn read(row: &AnyRow) -> Result<Recipe, FunnelError> {
    let id: String = row.try_get("id")?;
    let spec: RecipeSpec = serde_json::from_str(&row.try_get::<String, _>("body")?)
        .map_err(|e| FunnelError::corrupt(format!("recipe {id}"), e))?;
    Ok(Recipe {
        maker: row.try_get("maker")?,
        version: u32::try_from(row.try_get::<i64, _>("version")?).unwrap_or(u32::MAX),
        name: spec.name,
        description: spec.description,
        params: spec.params,
        drop: spec.drop,
        created_ms: unms(row.try_get("created_ms")?),
        updated_ms: unms(row.try_get("updated_ms")?),
        id,
    })
}

impl Ledger {
    /// A new recipe `id` of `maker` (version 1); `None` when the id is taken.
    pub async fn create_recipe(
        &self,
        maker: &str,
        id: &str,
        spec: &RecipeSpec,
        now_ms: u64,
    ) -> Result<Option<Recipe>, FunnelError> {
        let done = sqlx::query(&format!(
            "INSERT INTO recipes ({COLUMNS}) VALUES ($1, $2, 1, $3, $4, $4) ON CONFLICT (maker, id) DO NOTHING"
        ))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .bind(body(spec)?)
        .bind(ms(now_ms))
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.recipe_on(&self.write, maker, id).await
    }

    /// `maker`'s recipes, oldest first.
    pub async fn recipes(&self, maker: &str) -> Result<Vec<Recipe>, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recipes WHERE maker = $1 ORDER BY created_ms, id"
        ))
        .bind(maker.to_owned())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(read).collect()
    }

    /// One recipe of `maker` (another maker's is `None`).
    pub async fn recipe(&self, maker: &str, id: &str) -> Result<Option<Recipe>, FunnelError> {
        self.recipe_on(&self.write, maker, id).await
    }

    async fn recipe_on(
        &self,
        pool: &sqlx::AnyPool,
        maker: &str,
        id: &str,
    ) -> Result<Option<Recipe>, FunnelError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recipes WHERE maker = $1 AND id = $2"
        ))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .fetch_optional(pool)
        .await?;
        row.as_ref().map(read).transpose()
    }

    /// Replaces recipe `id` with `spec` as its next version, if it is still at `version`:
    /// `None` when it is gone or another change came first (read it again and retry).
    pub async fn replace_recipe(
        &self,
        maker: &str,
        id: &str,
        version: u32,
        spec: &RecipeSpec,
        now_ms: u64,
    ) -> Result<Option<Recipe>, FunnelError> {
        let done = sqlx::query(
            "UPDATE recipes SET body = $1, version = version + 1, updated_ms = $2 \
             WHERE maker = $3 AND id = $4 AND version = $5",
        )
        .bind(body(spec)?)
        .bind(ms(now_ms))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .bind(i64::from(version))
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.recipe_on(&self.write, maker, id).await
    }

    /// Deletes recipe `id`; whether there was one. Drops made from it keep its id and
    /// version.
    pub async fn delete_recipe(&self, maker: &str, id: &str) -> Result<bool, FunnelError> {
        let done = sqlx::query("DELETE FROM recipes WHERE maker = $1 AND id = $2")
            .bind(maker.to_owned())
            .bind(id.to_owned())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Loads `shipped` recipes for `maker` the first time this is called on this ledger,
    /// never again (a recipe deleted later stays deleted), also when several nodes start at
    /// once: the mark and the recipes are one transaction. They are listed in the order
    /// given. Returns how many were loaded.
    pub async fn seed_recipes(
        &self,
        maker: &str,
        shipped: &[(String, RecipeSpec)],
        now_ms: u64,
    ) -> Result<usize, FunnelError> {
        let mut tx = self.write.begin().await?;
        let first = sqlx::query(
            "INSERT INTO settings (maker, key, value) VALUES ($1, $2, $3) ON CONFLICT (maker, key) DO NOTHING",
        )
        .bind(maker.to_owned())
        .bind(SEEDED)
        .bind(now_ms.to_string())
        .execute(&mut *tx)
        .await?;
        if first.rows_affected() == 0 {
            return Ok(0);
        }
        let mut loaded = 0;
        // A millisecond apart, so that the list (oldest first) keeps their order.
        for (at, (id, spec)) in (now_ms..).zip(shipped) {
            let done = sqlx::query(&format!(
                "INSERT INTO recipes ({COLUMNS}) VALUES ($1, $2, 1, $3, $4, $4) ON CONFLICT (maker, id) DO NOTHING"
            ))
            .bind(maker.to_owned())
            .bind(id.clone())
            .bind(body(spec)?)
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
            loaded += usize::try_from(done.rows_affected()).unwrap_or(0);
        }
        tx.commit().await?;
        Ok(loaded)
    }
}
