//! The HTTP API under `/api/v1` (see `docs/api.md`).

mod analytics;
mod claims;
pub mod csv;
mod drops;
mod followup;
mod import;
mod privacy;
mod waitlist;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::AppError;

pub(crate) use drops::{control_drop, create_drop};

/// The largest request body the API reads.
pub const MAX_BODY: usize = 1 << 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/drops", post(drops::create).get(drops::list))
        .route("/api/v1/drops/{id}", get(drops::get))
        .route("/api/v1/drops/{id}/start", post(drops::start))
        .route("/api/v1/drops/{id}/pause", post(drops::pause))
        .route("/api/v1/drops/{id}/resume", post(drops::resume))
        .route("/api/v1/drops/{id}/close", post(drops::close))
        .route("/api/v1/drops/{id}/fire", post(drops::fire))
        .route("/api/v1/drops/{id}/claims", get(claims::list))
        .route("/api/v1/drops/{id}/stats", get(claims::stats))
        .route("/api/v1/claims/{code}/redeem", post(claims::redeem))
        .route("/api/v1/viewers", post(claims::mint_viewer))
        .route(
            "/api/v1/drops/{id}/waitlist",
            post(waitlist::join).get(waitlist::list),
        )
        .route("/api/v1/drops/{id}/waitlist/me", get(waitlist::mine))
        .route("/api/v1/viewers/{viewer_id}/export", get(privacy::export))
        .route("/api/v1/viewers/{viewer_id}", delete(privacy::erase))
        .route("/api/v1/ledger/facts", get(privacy::facts))
        .route(
            "/api/v1/webhooks",
            post(webhooks::create).get(webhooks::list),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/api/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/api/v1/webhooks/{id}/replay", post(webhooks::replay))
        .route(
            "/api/v1/webhooks/{id}/deliveries/{msg_id}/retry",
            post(webhooks::retry),
        )
        .route("/api/v1/coupons/{code}/redeem", post(followup::redeem))
        .route("/api/v1/nurture", get(followup::get).put(followup::put))
        .route("/api/v1/analytics/drops", get(analytics::drops))
        .route("/api/v1/analytics/drops/{id}", get(analytics::drop))
        .route("/api/v1/analytics/summary", get(analytics::summary))
        .route("/api/v1/analytics/compare", get(analytics::compare))
        .route(
            "/api/v1/ledger/import",
            post(import::import).layer(DefaultBodyLimit::max(import::MAX_IMPORT)),
        )
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
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge { limit: MAX_BODY }
            } else {
                AppError::bad_request("bad_body", e.body_text(), None)
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = (path != ".").then_some(path);
                let inner = e.into_inner();
                let code = if inner.is_syntax() || inner.is_eof() {
                    "bad_json"
                } else {
                    "bad_request"
                };
                AppError::bad_request(code, inner.to_string(), field)
            })
    }
}
