//! The maker's chat routes under `/api/v1/drops/{id}/chat`: the moderation view, the
//! host's messages, deletes, settings, mutes and bans, the pin. Maker-scoped like every
//! drop route ([`Caller`]); the steps themselves are the hub's (`hub/moderation.rs`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dropwire_core::chat::{ChatMessage, ChatMute};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};
use crate::hub::{ChatAdmin, ChatSettingsView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostMessage {
    /// 1 to `chat_max_chars` (280) characters once trimmed.
    #[schema(min_length = 1, max_length = 4096)]
    text: String,
    /// Pin it too (broadcasts `chat_pin`).
    #[serde(default)]
    pin: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    #[serde(default)]
    enabled: Option<bool>,
    /// One message per viewer per this many seconds (0: off).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3600)]
    slow_mode_s: Option<u32>,
    /// Refused words (whole word, any case): at most 200, each 1–40 characters.
    #[serde(default)]
    #[schema(max_items = 200)]
    blocked_words: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    #[schema(min_length = 1, max_length = 128)]
    viewer_id: String,
    /// How long (default 600 s); ignored for a ban.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    for_s: Option<u32>,
    /// A ban: for the drop's life.
    #[serde(default)]
    ban: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// The message to pin; `null` unpins.
    message_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pinned {
    pinned: Option<ChatMessage>,
}

/// `GET /api/v1/drops/{id}/chat`: the moderation view.
#[utoipa::path(
    get,
    path = "/api/v1/drops/{id}/chat",
    tag = "chat",
    operation_id = "get_chat",
    summary = "The drop's chat for moderation: settings, blocked words, the pin, the latest messages with their authors' viewer ids, mutes and bans",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The chat", body = ChatAdmin),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ChatAdmin>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    Ok(Json(hub.chat_admin()))
}

/// `POST /api/v1/drops/{id}/chat` `{text, pin?}`: the host's message.
#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/chat",
    tag = "chat",
    operation_id = "post_chat",
    summary = "Send a host message (`host: true`), broadcast with the next chat tick; pinned too with `pin`",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = HostMessage,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The message", body = ChatMessage),
        (status = 400, description = "`bad_request`: the body is not a host message", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 422, description = "`invalid` (field `text`): empty or too long; `drop_closed`: the drop is closed", body = ErrorBody),
    )
)]
pub async fn post(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<HostMessage>,
) -> Result<(StatusCode, Json<ChatMessage>), AppError> {
    let hub = caller.hub(&state, &id).await?;
    let message = hub.host_chat(&body.text, body.pin).await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// `DELETE /api/v1/drops/{id}/chat/messages/{msg_id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/drops/{id}/chat/messages/{msg_id}",
    tag = "chat",
    operation_id = "delete_chat_message",
    summary = "Delete a message: broadcasts `chat_delete`; snapshots leave it out",
    params(
        ("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1),
        ("msg_id" = String, Path, description = "The message's id", min_length = 1),
    ),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such drop, or no such message among the latest (or deleted already)", body = ErrorBody),
    )
)]
pub async fn delete_message(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, msg_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let hub = caller.hub(&state, &id).await?;
    hub.delete_chat(&msg_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/drops/{id}/chat/settings`.
#[utoipa::path(
    put,
    path = "/api/v1/drops/{id}/chat/settings",
    tag = "chat",
    operation_id = "put_chat_settings",
    summary = "Change the chat's settings (those given): on or off, slow mode, blocked words; broadcasts `chat_settings` (without the words)",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = SettingsBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The settings", body = ChatSettingsView),
        (status = 400, description = "`bad_request`: the body is not the settings", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 422, description = "`invalid`, naming the field: a value out of range, a blocked word empty once trimmed or over 40 characters", body = ErrorBody),
    )
)]
pub async fn settings(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Json<ChatSettingsView>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    let view = hub
        .chat_settings(body.enabled, body.slow_mode_s, body.blocked_words)
        .await?;
    Ok(Json(view))
}

/// `POST /api/v1/drops/{id}/chat/mutes`.
#[utoipa::path(
    post,
    path = "/api/v1/drops/{id}/chat/mutes",
    tag = "chat",
    operation_id = "mute_chat_viewer",
    summary = "Mute a viewer for `for_s` (default 600 s), or ban it for the drop's life",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = MuteBody,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The mute", body = ChatMute),
        (status = 400, description = "`bad_request`: the body is not a mute", body = ErrorBody),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 422, description = "`invalid`, naming the field: a value out of range", body = ErrorBody),
    )
)]
pub async fn mute(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MuteBody>,
) -> Result<(StatusCode, Json<ChatMute>), AppError> {
    let hub = caller.hub(&state, &id).await?;
    let mute = hub.mute(&body.viewer_id, body.for_s, body.ban).await?;
    Ok((StatusCode::CREATED, Json(mute)))
}

/// `DELETE /api/v1/drops/{id}/chat/mutes/{viewer_id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/drops/{id}/chat/mutes/{viewer_id}",
    tag = "chat",
    operation_id = "unmute_chat_viewer",
    summary = "Lift a viewer's mute or ban",
    params(
        ("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1),
        ("viewer_id" = String, Path, description = "The viewer's id", min_length = 1, max_length = 128),
    ),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Lifted (or there was none)"),
        (status = 404, description = "`not_found`: no such drop", body = ErrorBody),
        (status = 422, description = "`invalid` (field `viewer_id`): over 128 characters", body = ErrorBody),
    )
)]
pub async fn unmute(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, viewer_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let hub = caller.hub(&state, &id).await?;
    hub.unmute(&viewer_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/drops/{id}/chat/pin` `{message_id}`.
#[utoipa::path(
    put,
    path = "/api/v1/drops/{id}/chat/pin",
    tag = "chat",
    operation_id = "pin_chat_message",
    summary = "Pin a message (`null`: unpin); broadcasts `chat_pin`",
    params(("id" = String, Path, description = "The drop's id (a slug of `a-z`, `0-9` and `-`)", min_length = 1)),
    request_body = PinBody,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The pinned message, or `null`", body = Pinned),
        (status = 404, description = "`not_found`: no such drop, or no such message among the latest", body = ErrorBody),
    )
)]
pub async fn pin(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PinBody>,
) -> Result<Json<Pinned>, AppError> {
    let hub = caller.hub(&state, &id).await?;
    let pinned = hub.pin_chat(body.message_id.as_deref()).await?;
    Ok(Json(Pinned { pinned }))
}
