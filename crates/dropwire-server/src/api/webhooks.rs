//! Webhook endpoints and their deliveries (see docs/api.md, "Webhooks").

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use dropwire_core::FactKind;
use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_funnel::{Delivery, Endpoint, EndpointPatch};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::app::AppState;
use crate::auth::Admin;
use crate::error::AppError;
use crate::webhooks::{sign, ssrf};

/// How long a rotated-out secret keeps signing.
const ROTATION_MS: u64 = 24 * 3600 * 1000;
const MAX_ENDPOINTS: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Serialize)]
pub struct Created {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// The signing secret, shown this once.
    secret: String,
}

fn check_events(events: &[String]) -> Result<(), AppError> {
    if events.is_empty() || events.len() > 50 {
        return Err(invalid(
            "events",
            "name 1-50 event types, or [\"*\"] for all",
        ));
    }
    for (i, e) in events.iter().enumerate() {
        if e != "*" && FactKind::parse(e).is_none() {
            let known: Vec<&str> = FactKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(invalid(
                &format!("events[{i}]"),
                &format!("unknown event {e:?}; one of {}, or *", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn invalid(field: &str, message: &str) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    })
}

async fn check_url(state: &AppState, url: &str) -> Result<(), AppError> {
    ssrf::check_url(url, state.webhook_allow_private)
        .await
        .map(|_| ())
        .map_err(AppError::UrlRefused)
}

fn check_description(d: &str) -> Result<(), AppError> {
    if d.chars().count() > 500 {
        return Err(invalid("description", "at most 500 characters"));
    }
    Ok(())
}

/// `POST /api/v1/webhooks` → 201 with the endpoint and its secret.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let ledger = state.ledger()?;
    check_events(&body.events)?;
    check_description(&body.description)?;
    check_url(&state, &body.url).await?;
    if ledger.endpoints(DEFAULT_MAKER).await?.len() >= MAX_ENDPOINTS {
        return Err(invalid("url", "at most 50 endpoints per maker"));
    }
    let secret = sign::new_secret()?;
    let endpoint = ledger
        .create_endpoint(
            DEFAULT_MAKER,
            &body.url,
            &body.events,
            &body.description,
            &secret,
            state.clock.now_ms(),
        )
        .await?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(Created { endpoint, secret })))
}

#[derive(Debug, Serialize)]
pub struct EndpointList {
    endpoints: Vec<Endpoint>,
}

/// `GET /api/v1/webhooks`
pub async fn list(_: Admin, State(state): State<AppState>) -> Result<Json<EndpointList>, AppError> {
    let endpoints = state.ledger()?.endpoints(DEFAULT_MAKER).await?;
    Ok(Json(EndpointList { endpoints }))
}

fn no_such(id: &str) -> AppError {
    AppError::NoSuchEndpoint(format!("no webhook endpoint {id:?}"))
}

/// `GET /api/v1/webhooks/{id}`
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, AppError> {
    let found = state.ledger()?.endpoint(DEFAULT_MAKER, &id).await?;
    found.map(Json).ok_or_else(|| no_such(&id))
}

/// `PATCH /api/v1/webhooks/{id}`: url, events, description, enabled.
pub async fn update(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<Endpoint>, AppError> {
    let ledger = state.ledger()?;
    if let Some(events) = &patch.events {
        check_events(events)?;
    }
    if let Some(d) = &patch.description {
        check_description(d)?;
    }
    if let Some(url) = &patch.url {
        check_url(&state, url).await?;
    }
    let updated = ledger
        .update_endpoint(DEFAULT_MAKER, &id, &patch, state.clock.now_ms())
        .await?;
    updated.map(Json).ok_or_else(|| no_such(&id))
}

/// `DELETE /api/v1/webhooks/{id}` → 204; its messages go with it.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state.ledger()?.delete_endpoint(DEFAULT_MAKER, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(&id))
    }
}

#[derive(Debug, Serialize)]
pub struct Rotated {
    id: String,
    secret: String,
    /// Until when the previous secret also signs every message.
    previous_valid_until_ms: u64,
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`
pub async fn rotate(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rotated>, AppError> {
    let secret = sign::new_secret()?;
    let until = state.clock.now_ms() + ROTATION_MS;
    if !state
        .ledger()?
        .rotate_secret(DEFAULT_MAKER, &id, &secret, until)
        .await?
    {
        return Err(no_such(&id));
    }
    Ok(Json(Rotated {
        id,
        secret,
        previous_valid_until_ms: until,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    state: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Deliveries {
    endpoint_id: String,
    deliveries: Vec<Delivery>,
}

/// `GET /api/v1/webhooks/{id}/deliveries?state=pending|delivered|dead&limit=N`
pub async fn deliveries(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Deliveries>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    if let Some(s) = &q.state {
        if !matches!(s.as_str(), "pending" | "delivered" | "dead") {
            return Err(AppError::bad_request(
                "bad_request",
                "state is pending, delivered or dead",
                Some("state".into()),
            ));
        }
    }
    let ledger = state.ledger()?;
    if ledger.endpoint(DEFAULT_MAKER, &id).await?.is_none() {
        return Err(no_such(&id));
    }
    let deliveries = ledger
        .deliveries(&id, q.state.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(Deliveries {
        endpoint_id: id,
        deliveries,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// Unix ms: every message created since then goes out again.
    since: u64,
}

#[derive(Debug, Serialize)]
pub struct Requeued {
    requeued: u64,
}

/// `POST /api/v1/webhooks/{id}/replay` `{since}`
pub async fn replay(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<Requeued>, AppError> {
    let ledger = state.ledger()?;
    if ledger.endpoint(DEFAULT_MAKER, &id).await?.is_none() {
        return Err(no_such(&id));
    }
    let requeued = ledger.replay(&id, body.since, state.clock.now_ms()).await?;
    Ok(Json(Requeued { requeued }))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{msg_id}/retry`
pub async fn retry(
    _: Admin,
    State(state): State<AppState>,
    Path((id, msg_id)): Path<(String, String)>,
) -> Result<Json<Requeued>, AppError> {
    let ledger = state.ledger()?;
    if ledger.endpoint(DEFAULT_MAKER, &id).await?.is_none() {
        return Err(no_such(&id));
    }
    if !ledger.retry(&id, &msg_id, state.clock.now_ms()).await? {
        return Err(AppError::NoSuchEndpoint(format!(
            "no message {msg_id:?} to {id}"
        )));
    }
    Ok(Json(Requeued { requeued: 1 }))
}
