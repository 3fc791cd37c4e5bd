//! Webhook endpoints and their deliveries (see docs/api.md, "Webhooks").

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use dropwire_core::FactKind;

use dropwire_funnel::{Delivery, Endpoint, EndpointPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};
use crate::webhooks::{sign, ssrf};

/// How long a rotated-out secret keeps signing.
const ROTATION_MS: u64 = 24 * 3600 * 1000;
const MAX_ENDPOINTS: usize = 50;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// An http(s) URL that resolves to a public address (unless `--webhook-allow-private`).
    #[schema(example = "https://crm.example/hooks/dropwire")]
    url: String,
    /// 1-50 event types (the fact kinds, `followup.confirmation`, `coupon.redeemed`,
    /// `nurture.offer`, `nurture.skipped`, `endpoint.disabled`), or `["*"]` for all.
    #[schema(
        value_type = Vec<dropwire_core::funnel::EventName>,
        min_items = 1,
        max_items = 50,
        example = json!(["claim.granted", "waitlist.joined"])
    )]
    events: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: String,
}

#[derive(Debug, Serialize, ToSchema)]
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
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    summary = "Add an endpoint (at most 50); the answer carries its signing secret, this once",
    request_body = NewEndpoint,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The endpoint with its `whsec_…` secret", body = Created),
        (status = 422, description = "`invalid`: no events, an unknown event, a description over 500 characters, or 50 endpoints already; `url_refused`: the URL is not http(s), carries credentials, or resolves to a loopback, private, link-local or metadata address", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Created>), AppError> {
    let ledger = state.ledger()?;
    check_events(&body.events)?;
    check_description(&body.description)?;
    check_url(&state, &body.url).await?;
    if ledger.endpoints(caller.maker()).await?.len() >= MAX_ENDPOINTS {
        return Err(invalid("url", "at most 50 endpoints per maker"));
    }
    let secret = sign::new_secret()?;
    let endpoint = ledger
        .create_endpoint(
            caller.maker(),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    endpoints: Vec<Endpoint>,
}

/// `GET /api/v1/webhooks`
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    summary = "Every endpoint (never the secrets)",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The endpoints", body = EndpointList),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<EndpointList>, AppError> {
    let endpoints = state.ledger()?.endpoints(caller.maker()).await?;
    Ok(Json(EndpointList { endpoints }))
}

fn no_such(id: &str) -> AppError {
    AppError::NoSuchEndpoint(format!("no webhook endpoint {id:?}"))
}

/// `GET /api/v1/webhooks/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "get_webhook",
    summary = "One endpoint",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, AppError> {
    let found = state.ledger()?.endpoint(caller.maker(), &id).await?;
    found.map(Json).ok_or_else(|| no_such(&id))
}

/// `PATCH /api/v1/webhooks/{id}`: url, events, description, enabled.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "update_webhook",
    summary = "Change an endpoint; `enabled: true` re-enables a disabled one (its failure streak starts over)",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1)),
    request_body = EndpointPatch,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The endpoint after the change", body = Endpoint),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 422, description = "`invalid`: no events, an unknown event, or a description over 500 characters; `url_refused`: as at creation", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn update(
    caller: Caller,
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
        .update_endpoint(caller.maker(), &id, &patch, state.clock.now_ms())
        .await?;
    updated.map(Json).ok_or_else(|| no_such(&id))
}

/// `DELETE /api/v1/webhooks/{id}` → 204; its messages go with it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    summary = "Delete an endpoint and its messages",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if state.ledger()?.delete_endpoint(caller.maker(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(&id))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    id: String,
    secret: String,
    /// Until when the previous secret also signs every message.
    previous_valid_until_ms: u64,
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    summary = "A new signing secret; for 24 h every message is signed by both",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The new secret", body = Rotated),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn rotate(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Rotated>, AppError> {
    let secret = sign::new_secret()?;
    let until = state.clock.now_ms() + ROTATION_MS;
    if !state
        .ledger()?
        .rotate_secret(caller.maker(), &id, &secret, until)
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only messages in this state (`dead`: the dead letter list).
    #[param(value_type = Option<DeliveryState>, inline)]
    state: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(value_type = Option<u64>, maximum = 4_294_967_295_u64)]
    limit: Option<u32>,
}

/// Where a message is.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next try.
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// Out of tries (or its endpoint was disabled): the dead letter list.
    Dead,
}

impl DeliveryState {
    fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deliveries {
    endpoint_id: String,
    deliveries: Vec<Delivery>,
}

/// `GET /api/v1/webhooks/{id}/deliveries?state=pending|delivered|dead&limit=N`
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_deliveries",
    summary = "An endpoint's messages and their tries, newest first",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1), DeliveryQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The messages", body = Deliveries),
        (status = 400, description = "`bad_request`: `state` is not pending, delivered or dead, a parameter of the wrong type, or an unknown one", body = ErrorBody),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn deliveries(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Deliveries>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    let only = match q.state.as_deref() {
        None => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            AppError::bad_request(
                "bad_request",
                "state is pending, delivered or dead",
                Some("state".into()),
            )
        })?),
    };
    let ledger = state.ledger()?;
    if ledger.endpoint(caller.maker(), &id).await?.is_none() {
        return Err(no_such(&id));
    }
    let deliveries = ledger
        .deliveries(&id, only.map(DeliveryState::as_str), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(Deliveries {
        endpoint_id: id,
        deliveries,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// Unix ms: every message created since then goes out again.
    since: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    requeued: u64,
}

/// `POST /api/v1/webhooks/{id}/replay` `{since}`
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/replay",
    tag = "webhooks",
    operation_id = "replay_webhook",
    summary = "Send again every message to this endpoint created since a time (with its webhook-id)",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1)),
    request_body = ReplayBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "How many messages go out again", body = Requeued),
        (status = 404, description = "`no_such_endpoint`: no such endpoint", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn replay(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<Requeued>, AppError> {
    let ledger = state.ledger()?;
    if ledger.endpoint(caller.maker(), &id).await?.is_none() {
        return Err(no_such(&id));
    }
    let requeued = ledger.replay(&id, body.since, state.clock.now_ms()).await?;
    Ok(Json(Requeued { requeued }))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{msg_id}/retry`
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{msg_id}/retry",
    tag = "webhooks",
    operation_id = "retry_delivery",
    summary = "Send one message (a dead letter, or one waiting) again now",
    params(("id" = String, Path, description = "The endpoint's id (`ep_…`)", min_length = 1), ("msg_id" = String, Path, description = "The message's id (`msg_…`, its `webhook-id`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "`{requeued: 1}`", body = Requeued),
        (status = 404, description = "`no_such_endpoint`: no such endpoint, or no such message to it", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn retry(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, msg_id)): Path<(String, String)>,
) -> Result<Json<Requeued>, AppError> {
    let ledger = state.ledger()?;
    if ledger.endpoint(caller.maker(), &id).await?.is_none() {
        return Err(no_such(&id));
    }
    if !ledger.retry(&id, &msg_id, state.clock.now_ms()).await? {
        return Err(AppError::NoSuchEndpoint(format!(
            "no message {msg_id:?} to {id}"
        )));
    }
    Ok(Json(Requeued { requeued: 1 }))
}
