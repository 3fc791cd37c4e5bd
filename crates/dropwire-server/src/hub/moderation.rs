//! The host's hand on a drop's chat: settings, mutes and bans, deletes, the pin, and the
//! host's own messages (the admin routes, `api/chat.rs`).
//!
//! Each moderation step is appended to the drop's control log as a
//! [`ControlAction::Chat`] entry — through the same conditional append as start or pause,
//! so every node reads it (the others re-read the log when it is announced) and it
//! survives a restart — and then broadcast (`chat_settings`, `chat_delete`, `chat_pin`;
//! mutes and blocked words are not broadcast).

use std::sync::Arc;

use dropwire_core::chat::{self, ChatMessage, ChatMute, ChatOp, TextRefusal};
use dropwire_core::protocol::ServerMsg;
use dropwire_core::{ControlAction, DropState};
use dropwire_store::Mark;
use serde::Serialize;

use super::chat::{host_message, moderation};
use super::relay::Resend;
use super::{DropHub, HubState};
use crate::error::AppError;

/// A mute without `for_s` lasts this long.
pub const DEFAULT_MUTE_S: u32 = 600;

/// The chat as the maker sees it (`GET /api/v1/drops/{id}/chat`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatAdmin {
    pub enabled: bool,
    pub slow_mode_s: u32,
    pub blocked_words: Vec<String>,
    pub pinned: Option<ChatMessage>,
    /// The latest messages, oldest first, with the author's `viewer_id` where this node
    /// took the message (`null` for the host's, and for messages another node took).
    pub recent: Vec<ChatMessage>,
    /// Mutes and bans in force.
    pub mutes: Vec<ChatMute>,
}

/// What `PUT …/chat/settings` answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatSettingsView {
    pub enabled: bool,
    pub slow_mode_s: u32,
    pub blocked_words: Vec<String>,
}

/// A moderation request the hub refuses: 422 `invalid`, naming the field (as every other
/// value the API checks beyond its schema).
fn bad(message: impl Into<String>, field: &str) -> AppError {
    AppError::Domain(dropwire_core::CoreError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

impl DropHub {
    /// Appends a moderation step to the control log (every node takes it in from there).
    async fn moderate(&self, op: ChatOp) -> Result<(), AppError> {
        self.control(ControlAction::Chat { op }).await?;
        Ok(())
    }

    /// Publishes one chat broadcast now.
    fn publish_chat(&self, build: impl Fn(u64, u64) -> ServerMsg) {
        let mut sh = self.lock();
        self.publish(&mut sh, || (Mark::Always, Resend::Nothing), build);
    }

    /// The chat with what the maker may see.
    pub fn chat_admin(&self) -> ChatAdmin {
        let now = self.now_ms();
        let mut sh = self.lock();
        let view = self.chat_view(&mut sh, true);
        let record = Arc::clone(&sh.record);
        let m = moderation(&mut sh.chat, &record);
        ChatAdmin {
            enabled: view.enabled,
            slow_mode_s: view.slow_mode_s,
            blocked_words: m.blocked_words.clone(),
            pinned: view.pinned,
            recent: view.recent,
            mutes: m.mutes_at(now),
        }
    }

    /// `PUT …/chat/settings`: changes what is given; broadcasts `chat_settings`.
    pub async fn chat_settings(
        &self,
        enabled: Option<bool>,
        slow_mode_s: Option<u32>,
        blocked_words: Option<Vec<String>>,
    ) -> Result<ChatSettingsView, AppError> {
        if slow_mode_s.is_some_and(|s| s > chat::MAX_SLOW_MODE_S) {
            return Err(bad(
                format!("slow_mode_s must be 0-{}", chat::MAX_SLOW_MODE_S),
                "slow_mode_s",
            ));
        }
        let blocked_words = match blocked_words {
            Some(words) => Some(chat::check_words(&words).map_err(|m| bad(m, "blocked_words"))?),
            None => None,
        };
        self.moderate(ChatOp::Settings {
            enabled,
            slow_mode_s,
            blocked_words,
        })
        .await?;
        let m = self.moderation_now();
        self.publish_chat(|seq, ts| ServerMsg::ChatSettings {
            seq,
            ts,
            enabled: m.enabled,
            slow_mode_s: m.slow_mode_s,
        });
        Ok(ChatSettingsView {
            enabled: m.enabled,
            slow_mode_s: m.slow_mode_s,
            blocked_words: m.blocked_words.clone(),
        })
    }

    fn moderation_now(&self) -> Arc<chat::ChatModeration> {
        let mut sh = self.lock();
        let record = Arc::clone(&sh.record);
        moderation(&mut sh.chat, &record)
    }

    /// `POST …/chat`: the host's message, in the next tick; pinned too with `pin`.
    pub async fn host_chat(&self, text: &str, pin: bool) -> Result<ChatMessage, AppError> {
        let text = match chat::clean_text(text, self.ctx.chat.max_chars) {
            Ok(t) => t,
            Err(TextRefusal::Empty) => return Err(bad("text is empty", "text")),
            Err(TextRefusal::TooLong) => {
                return Err(bad(
                    format!("text is limited to {} characters", self.ctx.chat.max_chars),
                    "text",
                ));
            }
        };
        let message = host_message(text, self.now_ms());
        {
            let mut sh = self.lock();
            if sh.view.state == DropState::Closed {
                return Err(AppError::DropClosed(self.id.to_string()));
            }
            self.queue_chat(&mut sh, message.clone());
        }
        if pin {
            self.pin_message(Some(message.clone())).await?;
        }
        Ok(message)
    }

    /// A message this node knows: among the latest, waiting for the tick, or pinned.
    fn known_message(&self, sh: &mut HubState, id: &str) -> Option<ChatMessage> {
        let record = Arc::clone(&sh.record);
        let m = moderation(&mut sh.chat, &record);
        if m.deleted.contains(id) {
            return None;
        }
        sh.chat
            .find(id)
            .or_else(|| m.pinned.clone().filter(|p| p.id == id))
    }

    /// `DELETE …/chat/messages/{msg_id}`: 404 for a message unknown (or deleted already);
    /// broadcasts `chat_delete`.
    pub async fn delete_chat(&self, msg_id: &str) -> Result<(), AppError> {
        {
            let mut sh = self.lock();
            if self.known_message(&mut sh, msg_id).is_none() {
                return Err(AppError::NotFound(format!("no chat message {msg_id:?}")));
            }
            sh.chat.unqueue(msg_id);
        }
        let ids = vec![msg_id.to_owned()];
        self.moderate(ChatOp::Delete { ids: ids.clone() }).await?;
        self.publish_chat(|seq, ts| ServerMsg::ChatDelete {
            seq,
            ts,
            ids: ids.clone(),
        });
        Ok(())
    }

    /// `PUT …/chat/pin`: pins a known message (404 otherwise), or unpins with `None`.
    pub async fn pin_chat(&self, msg_id: Option<&str>) -> Result<Option<ChatMessage>, AppError> {
        let message = match msg_id {
            Some(id) => {
                let mut sh = self.lock();
                let found = self.known_message(&mut sh, id);
                Some(found.ok_or_else(|| AppError::NotFound(format!("no chat message {id:?}")))?)
            }
            None => None,
        };
        self.pin_message(message.clone()).await?;
        Ok(message)
    }

    async fn pin_message(&self, message: Option<ChatMessage>) -> Result<(), AppError> {
        let message = message.map(|m| ChatMessage {
            viewer_id: None,
            ..m
        });
        self.moderate(ChatOp::Pin {
            message: message.clone(),
        })
        .await?;
        self.publish_chat(|seq, ts| ServerMsg::ChatPin {
            seq,
            ts,
            message: message.clone(),
        });
        Ok(())
    }

    /// `POST …/chat/mutes`: mutes `viewer_id` for `for_s` (default [`DEFAULT_MUTE_S`]), or
    /// bans it for the drop's life.
    pub async fn mute(
        &self,
        viewer_id: &str,
        for_s: Option<u32>,
        ban: bool,
    ) -> Result<ChatMute, AppError> {
        if viewer_id.is_empty() || viewer_id.len() > 128 {
            return Err(bad("viewer_id must be 1-128 characters", "viewer_id"));
        }
        if for_s.is_some_and(|s| s == 0 || s > chat::MAX_MUTE_S) {
            return Err(bad(
                format!("for_s must be 1-{}", chat::MAX_MUTE_S),
                "for_s",
            ));
        }
        let until_ms =
            (!ban).then(|| self.now_ms() + u64::from(for_s.unwrap_or(DEFAULT_MUTE_S)) * 1000);
        self.moderate(ChatOp::Mute {
            viewer_id: viewer_id.to_owned(),
            until_ms,
            ban,
        })
        .await?;
        Ok(ChatMute {
            viewer_id: viewer_id.to_owned(),
            until_ms,
            ban,
        })
    }

    /// `DELETE …/chat/mutes/{viewer_id}`: lifts a mute or ban (appended even when this
    /// node knows of none: another node may have muted the viewer a moment ago).
    pub async fn unmute(&self, viewer_id: &str) -> Result<(), AppError> {
        if viewer_id.is_empty() || viewer_id.len() > 128 {
            return Err(bad("viewer_id must be 1-128 characters", "viewer_id"));
        }
        self.moderate(ChatOp::Unmute {
            viewer_id: viewer_id.to_owned(),
        })
        .await
    }
}
