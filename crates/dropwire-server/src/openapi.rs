//! The OpenAPI 3.1 document of the HTTP API under `/api/v1`, generated from the code: each
//! handler's `#[utoipa::path]` (its parameters, body, answers and security) and the
//! `ToSchema` of the types it reads and writes (the server's, dropwire-core's and
//! dropwire-funnel's, behind their `utoipa` feature).
//!
//! The router of [`crate::api`] is built from the same annotated handlers
//! (`utoipa_axum::routes!`), so a route cannot be mounted without being in the document.
//! Served at `GET /api/v1/openapi.json`; `GET /api/docs` is a reference page that renders it
//! (embedded, no network: see [`crate::pages`]).
//!
//! Answers every operation of a kind shares are added here rather than on each handler:
//! 401 and 403 for the admin routes, 401 for the viewer routes, 400 and 413 for a JSON body.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::error::ErrorBody;

/// The security scheme of the routes that take the admin token.
pub const ADMIN: &str = "admin_token";
/// The security scheme of the routes that take a viewer token (or a host JWT).
pub(crate) const VIEWER: &str = "viewer_token";

/// The document's fixed part; the paths come from the router ([`crate::api::router`]).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "dropwire hub API",
        description = "The control, funnel and viewer-identity API of a dropwire hub. \
            Times are Unix epoch milliseconds in `*_ms` fields, durations seconds in `*_s`, \
            money integer cents. Every error answers `{\"error\": {\"code\", \"message\", \"field\"?}}` \
            (`docs/api.md`, \"Errors\", lists every code). The viewer WebSocket \
            (`GET /ws/v1/drops/{id}`) is described in `docs/api.md`, not here.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "drops", description = "Create drops and move their timeline (admin)"),
        (name = "claims", description = "Claims and live figures (admin)"),
        (name = "chat", description = "A drop's chat: moderation, host messages, the pin (admin; viewers chat over the WebSocket)"),
        (name = "viewers", description = "Viewer identity (public)"),
        (name = "waitlist", description = "The waitlist before a drop (viewer; the list: admin)"),
        (name = "privacy", description = "A viewer's data: export and erasure (admin)"),
        (name = "ledger", description = "The funnel ledger's facts, and imports (admin)"),
        (name = "webhooks", description = "Webhook endpoints and their deliveries, Standard Webhooks (admin)"),
        (name = "follow-up", description = "Follow-up coupons and the nurture schedule (admin)"),
        (name = "analytics", description = "The funnel KPIs, JSON or CSV (admin)"),
        (name = "calendar", description = "The launch calendar: upcoming drops (public; as iCalendar: `GET /calendar.ics`)"),
        (name = "makers", description = "Makers (tenants) and their tokens (operator; a maker: its own)"),
        (name = "recipes", description = "Recipes: reusable drop templates with `{{name}}` parameters (admin)"),
        (name = "coops", description = "Co-ops: makers sharing one launch calendar, its overlaps and the co-op KPIs (operator; the calendar: public, as iCalendar: `GET /coops/{id}/calendar.ics`)"),
        (name = "passes", description = "Collectible passes: a maker's pass rules, the passes viewers earn, revocation, and verifying a pass token (admin; a viewer's own: viewer; verifying: public; the key: `GET /.well-known/jwks.json`)"),
        (name = "meta", description = "This document"),
    )
)]
pub(crate) struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some(
            "The operator's admin token (`--admin-token`, or the one in the data directory), \
             or a maker's token (`dwm_…`, from `POST /api/v1/makers`). A missing one answers \
             401 `unauthorized`, an unknown or revoked maker token 401 `bad_token`, a wrong \
             admin token 403 `forbidden`. A maker sees only its own drops and data (another \
             maker's drop answers 404); operator-only routes answer a maker 403 `forbidden`. \
             The operator may act as a maker with the header `X-Dropwire-Maker: <id>`."
                .into(),
        );
        components.add_security_scheme(ADMIN, SecurityScheme::Http(admin));
        let mut viewer = Http::new(HttpAuthScheme::Bearer);
        viewer.bearer_format = Some("dw1 viewer token or HS256 JWT".into());
        viewer.description = Some(
            "A viewer token from `POST /api/v1/viewers`, or a host platform's HS256 JWT \
             (`--jwt-secret`). A missing one answers 401 `unauthorized`, a forged or \
             expired one 401 `bad_token`."
                .into(),
        );
        components.add_security_scheme(VIEWER, SecurityScheme::Http(viewer));
    }
}

/// The whole document, as JSON.
pub fn document() -> Value {
    let (_, doc) = crate::api::router().split_for_parts();
    let mut doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    add_common_responses(&mut doc);
    doc
}

/// The document, serialized once.
fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    summary = "This OpenAPI 3.1 document",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn spec() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// Adds the shared error answers (as `components/responses`, by reference) to each
/// operation: by its security and whether it reads a JSON body.
fn add_common_responses(doc: &mut Value) {
    let shared = json!({
        "BadBody": error_response(
            "`bad_json` (not JSON), `bad_request` (a wrong type, a missing or unknown field: \
             `field` names it) or `bad_body` (the body could not be read)"),
        "TooLarge": error_response("`too_large`: the body is over 1 MiB"),
        "NoAdminToken": error_response(
            "`unauthorized`: no `Authorization: Bearer <admin or maker token>`; `bad_token`: \
             an unknown or revoked maker token"),
        "WrongAdminToken": error_response(
            "`forbidden`: a wrong admin token, a maker token on an operator-only route, or \
             a maker's `X-Dropwire-Maker` naming another maker"),
        "BadMakerHeader": error_response(
            "`bad_request`: an empty `X-Dropwire-Maker` (`field` names it)"),
        "NoSuchMaker": error_response(
            "`not_found`: `X-Dropwire-Maker` names no maker (or the drop, recipe, endpoint \
             asked for is not the caller's)"),
        "MakerTokenUnchecked": error_response(
            "`ledger_off`: a maker token, or `X-Dropwire-Maker`, on a hub without a ledger; \
             `unavailable`: the ledger cannot be reached to check it"),
        "NoViewer": error_response(
            "`unauthorized` (no viewer token) or `bad_token` (forged, expired or from \
             another hub)"),
    });
    if let Some(components) = doc["components"].as_object_mut() {
        components.insert("responses".into(), shared);
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let schemes = security_of(op);
            let admin_only = !schemes.is_empty() && schemes.iter().all(|s| s == &[ADMIN]);
            let viewer = schemes.iter().any(|s| s == &[VIEWER]);
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            let mut add = |status: &str, name: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| reference(name));
            };
            if json_body {
                add("400", "BadBody");
                add("413", "TooLarge");
            }
            if admin_only {
                add("400", "BadMakerHeader");
                add("401", "NoAdminToken");
                add("403", "WrongAdminToken");
                add("404", "NoSuchMaker");
                add("503", "MakerTokenUnchecked");
            }
            if viewer {
                add("401", "NoViewer");
            }
        }
    }
}

/// The schemes of each security requirement of an operation (`[]` for "none needed").
fn security_of(op: &Value) -> Vec<Vec<String>> {
    op["security"]
        .as_array()
        .map(|reqs| {
            reqs.iter()
                .map(|r| {
                    r.as_object()
                        .map(Map::keys)
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}
