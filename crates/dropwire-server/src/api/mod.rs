//! The HTTP API under `/api/v1` (see `docs/api.md`; its OpenAPI document, generated from
//! these handlers, is [`crate::openapi`]).

mod analytics;
mod calendar;
mod chat;
mod claims;
mod coops;
pub mod csv;
mod drops;
mod followup;
mod import;
mod makers;
mod passes;
mod privacy;
mod recipes;
mod waitlist;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::error::AppError;

pub(crate) use drops::{control_drop, create_drop};

/// The largest request body the API reads.
pub const MAX_BODY: usize = 1 << 20;

/// The API's routes, each from its annotated handler: the router and the OpenAPI document
/// ([`crate::openapi`]) come from this one list.
pub fn router() -> OpenApiRouter<AppState> {
    // The import reads up to 32 MiB; every other body is limited by the app (`MAX_BODY`).
    let import = OpenApiRouter::new()
        .routes(routes!(import::import))
        .layer(DefaultBodyLimit::max(import::MAX_IMPORT));
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(drops::create, drops::list))
        .routes(routes!(drops::get))
        .routes(routes!(drops::start))
        .routes(routes!(drops::pause))
        .routes(routes!(drops::resume))
        .routes(routes!(drops::close))
        .routes(routes!(drops::fire))
        .routes(routes!(chat::get, chat::post))
        .routes(routes!(chat::delete_message))
        .routes(routes!(chat::settings))
        .routes(routes!(chat::mute))
        .routes(routes!(chat::unmute))
        .routes(routes!(chat::pin))
        .routes(routes!(claims::list))
        .routes(routes!(claims::stats))
        .routes(routes!(claims::redeem))
        .routes(routes!(claims::mint_viewer))
        .routes(routes!(calendar::list))
        .routes(routes!(waitlist::join, waitlist::list))
        .routes(routes!(waitlist::mine))
        .routes(routes!(privacy::export))
        .routes(routes!(privacy::erase))
        .routes(routes!(privacy::facts))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::replay))
        .routes(routes!(webhooks::retry))
        .routes(routes!(followup::redeem))
        .routes(routes!(followup::get, followup::put))
        .routes(routes!(makers::create, makers::list))
        .routes(routes!(makers::get))
        .routes(routes!(makers::add_token))
        .routes(routes!(makers::revoke_token))
        .routes(routes!(recipes::create, recipes::list))
        .routes(routes!(recipes::get, recipes::update, recipes::delete))
        .routes(routes!(recipes::from_drop))
        .routes(routes!(coops::create, coops::list))
        .routes(routes!(coops::get, coops::update, coops::delete))
        .routes(routes!(coops::add_maker, coops::remove_maker))
        .routes(routes!(coops::calendar))
        .routes(routes!(coops::overlaps))
        .routes(routes!(coops::kpis))
        .routes(routes!(passes::create_rule, passes::list_rules))
        .routes(routes!(passes::get_rule, passes::delete_rule))
        .routes(routes!(passes::of_viewer))
        .routes(routes!(passes::mine))
        .routes(routes!(passes::revoke))
        .routes(routes!(passes::verify))
        .routes(routes!(analytics::drops))
        .routes(routes!(analytics::drop))
        .routes(routes!(analytics::summary))
        .routes(routes!(analytics::compare))
        .merge(import)
        .routes(routes!(crate::openapi::spec))
}

/// The API's routes.
pub fn routes() -> Router<AppState> {
    router().split_for_parts().0
}

/// Whether the client asked for CSV (`Accept: text/csv`).
pub fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"))
}

/// A JSON body whose errors name the offending field, in the API's error shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ApiBody(bytes) = ApiBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A request body read whole (up to [`MAX_BODY`]), for a handler that picks how to read it.
#[derive(Debug)]
pub struct ApiBody(pub Bytes);

impl FromRequest<AppState> for ApiBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge { limit: MAX_BODY }
                } else {
                    AppError::bad_request("bad_body", e.body_text(), None)
                }
            })
    }
}

/// `bytes` read as JSON into `T`, with errors that name the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Every body is an object; serde would also read a struct from an array of its fields
    // (`[null, null]`), which the document does not allow.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(AppError::bad_request(
            "bad_request",
            "the body must be a JSON object",
            None,
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let refused = match serde_path_to_error::deserialize(de) {
        Ok(body) => return Ok(body),
        Err(e) => e,
    };
    // JSON Schema, and so the OpenAPI document, counts `2.0` as the integer 2; serde
    // does not. A body refused for its shape is read once more with such numbers
    // written as integers; if that fails too, the first error is the answer.
    if refused.inner().is_data()
        && let Some(body) =
            whole_numbers_as_integers(bytes).and_then(|v| serde_json::from_value::<T>(v).ok())
    {
        return Ok(body);
    }
    let path = refused.path().to_string();
    let field = (path != ".").then_some(path);
    let inner = refused.into_inner();
    let code = if inner.is_syntax() || inner.is_eof() {
        "bad_json"
    } else {
        "bad_request"
    };
    Err(AppError::bad_request(code, inner.to_string(), field))
}

/// The JSON of `bytes` with every whole number written with a fraction (`2.0`, `-3e2`) as an
/// integer, or `None` when it has none (or is not JSON). Only magnitudes up to 2^53, where
/// a float is exactly the integer it reads as.
fn whole_numbers_as_integers(bytes: &[u8]) -> Option<serde_json::Value> {
    use serde_json::Value;
    fn walk(v: &mut Value) -> bool {
        match v {
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() != 0.0 || f.abs() > 9_007_199_254_740_992.0 {
                    return false;
                }
                *v = if f >= 0.0 {
                    Value::from(f as u64)
                } else {
                    Value::from(f as i64)
                };
                true
            }
            Value::Array(items) => items.iter_mut().fold(false, |any, i| walk(i) | any),
            Value::Object(fields) => fields.values_mut().fold(false, |any, f| walk(f) | any),
            _ => false,
        }
    }
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    walk(&mut value).then_some(value)
}
