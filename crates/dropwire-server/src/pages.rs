//! The pages (`/live/{id}`, `/obs/{id}?key=…`, `/panel`, the public launch calendar
//! `/calendar`), the API reference (`/api/docs`, which renders `/api/v1/openapi.json`) and
//! their assets, embedded in the
//! binary from `overlay-web/` at build time. Pages are never cached stale
//! (`no-cache` with an ETag); assets carry ETags and are compressed by the router.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "../../overlay-web/pages/"]
struct Pages;

#[derive(RustEmbed)]
#[folder = "../../overlay-web/assets/"]
struct Assets;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: http: data:; connect-src 'self' ws: wss:; frame-ancestors *";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/panel") }))
        .route("/panel", get(panel))
        .route("/api/docs", get(api_docs))
        .route("/calendar", get(calendar))
        .route("/live/{id}", get(live))
        .route("/obs/{id}", get(obs))
        .route("/assets/{*path}", get(asset))
}

fn etag_of(hash: [u8; 32]) -> String {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Serves one embedded file with its content type and ETag (304 when the client has it).
fn embedded(
    file: Option<rust_embed::EmbeddedFile>,
    name: &str,
    req: &HeaderMap,
    cache: &'static str,
    page: bool,
) -> Response {
    let Some(file) = file else {
        return AppError::NotFound(format!("no file {name}")).into_response();
    };
    let etag = etag_of(file.metadata.sha256_hash());
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if page {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    if req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    (headers, file.data.into_owned()).into_response()
}

/// A page that is the same for everyone, never cached stale.
fn page(name: &str, headers: &HeaderMap) -> Response {
    embedded(Pages::get(name), name, headers, "no-cache", true)
}

async fn panel(headers: HeaderMap) -> Response {
    page("panel.html", &headers)
}

/// The API reference: renders the OpenAPI document in the browser (no CDN, no network).
async fn api_docs(headers: HeaderMap) -> Response {
    page("api-docs.html", &headers)
}

/// The launch calendar (public): renders `GET /api/v1/calendar`.
async fn calendar(headers: HeaderMap) -> Response {
    page("calendar.html", &headers)
}

async fn live(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    state.hub_by_path(&id).await?;
    Ok(page("live.html", &headers))
}

#[derive(Debug, Deserialize)]
struct ObsQuery {
    key: Option<String>,
}

/// Without the drop's key the OBS source gets a 403 whose page shows nothing on stream
/// (transparent) and says why in the browser console only.
async fn obs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ObsQuery>,
    headers: HeaderMap,
) -> Response {
    let good = match state.hub_by_path(&id).await {
        Ok(hub) => {
            let key = q.key.unwrap_or_default();
            key.as_bytes().ct_eq(hub.record().obs_key.as_bytes()).into()
        }
        Err(_) => false,
    };
    if good {
        return embedded(
            Pages::get("obs.html"),
            "obs.html",
            &headers,
            "no-store",
            true,
        );
    }
    let page = embedded(
        Pages::get("obs-denied.html"),
        "obs-denied.html",
        &headers,
        "no-store",
        true,
    );
    (StatusCode::FORBIDDEN, page).into_response()
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    embedded(Assets::get(&path), &path, &headers, "no-cache", false)
}
