//! Recipes: reusable drop templates with `{{name}}` parameters (see `docs/api.md`,
//! "Recipes", and `dropwire_core::recipe` for the rules). They live in the funnel ledger,
//! beside the maker's other configuration; without a ledger these routes answer 503
//! `ledger_off`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dropwire_core::recipe::{self, RecipeParam, RecipeRef, RecipeSpec};
use dropwire_core::{DropId, DropSpec, StartsAt};
use dropwire_funnel::{Ledger, Recipe};
use dropwire_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

/// The most recipes one maker keeps.
const MAX_RECIPES: usize = 200;
/// How often a change is tried again when another one came first.
const PATCH_TRIES: usize = 4;

/// `POST /api/v1/drops` from a recipe: `{"recipe", "params", "starts_at"?, "auto_start"?, "id"?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropFromRecipe {
    /// The recipe's id; its current version is used.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub recipe: String,
    /// The parameters' values by name: strings, or integers for `integer` parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// The announced start (RFC 3339), as in a drop's create body.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<StartsAt>,
    /// The drop starts by itself at `starts_at` (which it then needs), as in a drop's create
    /// body; absent: as the recipe says (no, unless it says so).
    #[serde(default)]
    pub auto_start: Option<bool>,
    /// The drop's id; made from its title when absent.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub id: Option<String>,
}

fn no_such(id: &str) -> AppError {
    AppError::NoSuchRecipe(format!("no recipe {id:?}"))
}

fn invalid(field: &str, message: String) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.to_owned(),
        message,
    })
}

/// The drop `body` asks for, and the recipe version it comes from.
pub(crate) async fn drop_from_recipe(
    state: &AppState,
    caller: &Caller,
    body: DropFromRecipe,
) -> Result<(DropSpec, RecipeRef), AppError> {
    let ledger = state.ledger()?;
    let found = ledger.recipe(caller.maker(), &body.recipe).await?;
    let recipe = found.ok_or_else(|| invalid("recipe", format!("no recipe {:?}", body.recipe)))?;
    let spec = recipe.spec().make_drop(&body.params)?;
    Ok((
        DropSpec {
            id: body.id,
            starts_at: body.starts_at,
            auto_start: body.auto_start.unwrap_or(spec.auto_start),
            ..spec
        },
        RecipeRef {
            id: recipe.id,
            version: recipe.version,
        },
    ))
}

async fn create_checked(
    state: &AppState,
    ledger: &Ledger,
    maker: &str,
    spec: RecipeSpec,
) -> Result<Recipe, AppError> {
    spec.validate()?;
    let id = spec.id_or(&ulid::Ulid::new().to_string()[20..])?;
    if ledger.recipes(maker).await?.len() >= MAX_RECIPES {
        return Err(invalid(
            "id",
            format!("at most {MAX_RECIPES} recipes per maker; delete one first"),
        ));
    }
    let made = ledger
        .create_recipe(maker, &id, &spec, state.clock.now_ms())
        .await?;
    let made =
        made.ok_or_else(|| AppError::RecipeExists(format!("a recipe {id:?} exists already")))?;
    tracing::info!(recipe = %made.id, "recipe created");
    Ok(made)
}

/// `POST /api/v1/recipes` → 201 with the recipe (version 1).
#[utoipa::path(
    post,
    path = "/api/v1/recipes",
    tag = "recipes",
    operation_id = "create_recipe",
    summary = "Save a recipe: a drop template with {{name}} parameters",
    request_body = RecipeSpec,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The recipe, version 1", body = Recipe),
        (status = 409, description = "`already_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`invalid`: a parameter is undeclared, unused, badly named or has a default of the wrong type, or the template with the defaults does not make a valid drop (the message names the parameter or the cue); `field` is its path, e.g. `drop.script.cues[3].sku`", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<RecipeSpec>,
) -> Result<(StatusCode, Json<Recipe>), AppError> {
    let ledger = state.ledger()?;
    let made = create_checked(&state, ledger, caller.maker(), spec).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipeList {
    recipes: Vec<Recipe>,
}

/// `GET /api/v1/recipes`
#[utoipa::path(
    get,
    path = "/api/v1/recipes",
    tag = "recipes",
    operation_id = "list_recipes",
    summary = "Every recipe of the caller's maker, oldest first",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The recipes", body = RecipeList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<RecipeList>, AppError> {
    let recipes = state.ledger()?.recipes(caller.maker()).await?;
    Ok(Json(RecipeList { recipes }))
}

/// `GET /api/v1/recipes/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/recipes/{id}",
    tag = "recipes",
    operation_id = "get_recipe",
    summary = "One recipe",
    params(("id" = String, Path, description = "The recipe's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The recipe", body = Recipe),
        (status = 404, description = "`no_such_recipe`: no such recipe", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Recipe>, AppError> {
    let found = state.ledger()?.recipe(caller.maker(), &id).await?;
    found.map(Json).ok_or_else(|| no_such(&id))
}

/// What a `PATCH` may change: each field given replaces the recipe's whole field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipePatch {
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(max_items = 40)]
    params: Option<Vec<RecipeParam>>,
    /// The whole template (it replaces the old one).
    #[schema(value_type = Option<Object>)]
    drop: Option<Value>,
}

/// `PATCH /api/v1/recipes/{id}` → the recipe as its next version.
#[utoipa::path(
    patch,
    path = "/api/v1/recipes/{id}",
    tag = "recipes",
    operation_id = "update_recipe",
    summary = "Change a recipe (name, description, params, drop); its version goes up by one",
    params(("id" = String, Path, description = "The recipe's id", min_length = 1)),
    request_body = RecipePatch,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The recipe after the change", body = Recipe),
        (status = 404, description = "`no_such_recipe`: no such recipe", body = ErrorBody),
        (status = 409, description = "`conflict`: other changes kept coming in between (retry)", body = ErrorBody),
        (status = 422, description = "`invalid`: the recipe after the change breaks a rule, as at creation", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<RecipePatch>,
) -> Result<Json<Recipe>, AppError> {
    let ledger = state.ledger()?;
    for _ in 0..PATCH_TRIES {
        let Some(current) = ledger.recipe(caller.maker(), &id).await? else {
            return Err(no_such(&id));
        };
        let old = current.spec();
        let spec = RecipeSpec {
            id: old.id,
            name: patch.name.clone().unwrap_or(old.name),
            description: patch.description.clone().unwrap_or(old.description),
            params: patch.params.clone().unwrap_or(old.params),
            drop: patch.drop.clone().unwrap_or(old.drop),
        };
        spec.validate()?;
        let now = state.clock.now_ms();
        if let Some(changed) = ledger
            .replace_recipe(caller.maker(), &id, current.version, &spec, now)
            .await?
        {
            tracing::info!(recipe = %id, version = changed.version, "recipe changed");
            return Ok(Json(changed));
        }
    }
    Err(AppError::Store(StoreError::Conflict))
}

/// `DELETE /api/v1/recipes/{id}` → 204.
#[utoipa::path(
    delete,
    path = "/api/v1/recipes/{id}",
    tag = "recipes",
    operation_id = "delete_recipe",
    summary = "Delete a recipe (drops made from it keep its id and version)",
    params(("id" = String, Path, description = "The recipe's id", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`no_such_recipe`: no such recipe", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state.ledger()?.delete_recipe(caller.maker(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(&id))
    }
}

/// `POST /api/v1/drops/{id}/recipe`: the recipe's id, name and description.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipeOfDrop {
    /// `[a-z0-9-]`, 1–64; made from the name when absent.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    id: Option<String>,
    /// Default: the drop's title.
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2000)]
    description: String,
}

/// `POST /api/v1/drops/{id}/recipe` → 201 with the new recipe.
#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/recipe",
    tag = "recipes",
    operation_id = "recipe_from_drop",
    summary = "Turn a drop into a recipe: its create body, with the title and each SKU's name, price and stock as parameters defaulting to the drop's values",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = RecipeOfDrop,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The recipe, version 1", body = Recipe),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 409, description = "`already_exists`: the recipe id is taken", body = ErrorBody),
        (status = 422, description = "`invalid`: the id or name breaks a rule, or the drop's texts hold `{{name}}` placeholders of parameters it does not have", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger or the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn from_drop(
    caller: Caller,
    State(state): State<AppState>,
    Path(drop): Path<String>,
    ApiJson(body): ApiJson<RecipeOfDrop>,
) -> Result<(StatusCode, Json<Recipe>), AppError> {
    let ledger = state.ledger()?;
    let not_found = || AppError::NotFound(format!("no drop with id {drop:?}"));
    let id = DropId::parse(&drop).map_err(|_| not_found())?;
    let record = state.store.drop_record(&id).await?;
    let record = record
        .filter(|r| caller.sees(&r.maker))
        .ok_or_else(not_found)?;
    let name = body.name.unwrap_or_else(|| record.spec.title.clone());
    let spec = RecipeSpec {
        id: body.id,
        ..recipe::lift(&record.spec, name, body.description)
    };
    let made = create_checked(&state, ledger, caller.maker(), spec).await?;
    Ok((StatusCode::CREATED, Json(made)))
}
