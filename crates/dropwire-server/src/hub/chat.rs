//! A drop's chat on this node: a viewer's message from its checks to the coalesced
//! broadcast, and what snapshots show of the chat.
//!
//! A message is checked (signed in, length, chat on, ban or mute, blocked words, the
//! viewer's pace: slow mode and the per-viewer rate) and put in the drop's buffer; the
//! hub's task flushes the buffer at most once per [`CHAT_TICK`] into **one** sequenced
//! `chat` broadcast, so a busy chat costs a few broadcasts a second however many write.
//! The buffer holds at most [`ChatLimits::per_tick`] messages; beyond it a sender gets
//! `rate_limited`.
//!
//! The moderation in force is folded from the control log ([`ChatModeration`]), which
//! every node shares, so it applies everywhere and survives a restart (`moderation`
//! module: the host's steps). The latest messages (for snapshots) are kept from the
//! `chat` broadcasts as they are delivered, so a node knows every node's messages.
//! Message text is not durable beyond that buffer and the broadcast history.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use dropwire_core::chat::{
    self, ChatMessage, ChatModeration, RECENT, Silenced, TextRefusal, clean_text,
};
use dropwire_core::protocol::{ChatView, ServerMsg};
use dropwire_core::{DropRecord, DropState};
use dropwire_store::Mark;

use super::relay::Resend;
use super::{DropHub, HubState};
use crate::auth::Viewer;

/// The coalescing tick of a small drop: at most one `chat` broadcast per drop this often.
pub const CHAT_TICK: Duration = Duration::from_millis(100);
/// Viewers per step of the tick: past this many, the tick grows by [`CHAT_TICK`] per this
/// many more viewers, up to [`CHAT_TICK_STEPS`] ticks.
const VIEWERS_PER_STEP: u64 = 1_000;
const CHAT_TICK_STEPS: u64 = 10;

/// The coalescing tick of a drop watched by `viewers` (every node's): 100 ms up to 1,999
/// viewers, 100 ms more per 1,000 viewers beyond, at most 1 s (from 10,000). Each tick's
/// broadcast is one frame per viewer, so the chat costs about the same number of writes a
/// second at any audience past 1,000 (about 10,000 a second: at 10,000 viewers one frame a
/// second carries the second's messages), and a cue never queues behind many chat frames.
pub fn chat_tick(viewers: u64) -> Duration {
    let steps = (viewers / VIEWERS_PER_STEP).clamp(1, CHAT_TICK_STEPS);
    CHAT_TICK * u32::try_from(steps).unwrap_or(1)
}
/// Viewers whose pace a hub remembers at most; beyond it the stale ones are forgotten.
const PACES: usize = 50_000;
/// Authors of recent messages kept for the maker's moderation view.
const AUTHORS: usize = 500;
const MAX_RID: usize = 64;
/// The author shown for the maker's own messages.
pub const HOST_AUTHOR: &str = "host";

/// The chat's limits on this hub (`--chat-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// The longest message, in Unicode scalar values.
    pub max_chars: usize,
    /// Messages a viewer may send per minute, on average.
    pub rate_per_min: u32,
    /// Messages a viewer may send in a burst.
    pub burst: u32,
    /// Messages one coalescing tick may carry; more get `rate_limited`.
    pub per_tick: usize,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            max_chars: chat::DEFAULT_MAX_CHARS,
            rate_per_min: 20,
            burst: 5,
            per_tick: 200,
        }
    }
}

/// One viewer's pace: the rate limiter's theoretical arrival time (GCRA) and the last
/// message accepted (for slow mode), both on the hub's clock.
#[derive(Debug, Clone, Copy, Default)]
struct Pace {
    tat_ms: u64,
    last_ms: u64,
}

/// The chat's part of the hub's state.
#[derive(Debug, Default)]
pub(super) struct ChatBook {
    /// Messages waiting for the next tick.
    pending: Vec<ChatMessage>,
    /// The latest messages delivered, oldest first (at most [`RECENT`]).
    recent: VecDeque<ChatMessage>,
    /// Who wrote the messages sent through this node (for the maker's view).
    authors: VecDeque<(String, String)>,
    paces: HashMap<String, Pace>,
    /// The moderation as of a control log of `moderation_len` entries.
    moderation: Arc<ChatModeration>,
    moderation_len: Option<usize>,
}

impl ChatBook {
    /// The latest messages as the broadcasts `texts` (oldest first) leave them.
    pub(super) fn from_history<'a>(texts: impl Iterator<Item = &'a str>) -> Self {
        let mut book = ChatBook::default();
        for text in texts.filter(|t| t.starts_with(r#"{"type":"chat"#)) {
            if let Ok(msg) = serde_json::from_str::<ServerMsg>(text) {
                book.note(&msg);
            }
        }
        book
    }

    /// A message among the latest or waiting for the tick.
    pub(super) fn find(&self, id: &str) -> Option<ChatMessage> {
        self.recent
            .iter()
            .chain(&self.pending)
            .find(|m| m.id == id)
            .cloned()
    }

    /// Takes a message out of the next tick (deleted before it went out).
    pub(super) fn unqueue(&mut self, id: &str) {
        self.pending.retain(|m| m.id != id);
    }

    /// Keeps the latest messages up to date with a broadcast being delivered.
    pub(super) fn note(&mut self, msg: &ServerMsg) {
        match msg {
            ServerMsg::Chat { messages, .. } => {
                for m in messages {
                    if self.recent.len() >= RECENT {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(m.clone());
                }
            }
            ServerMsg::ChatDelete { ids, .. } => self.recent.retain(|m| !ids.contains(&m.id)),
            _ => {}
        }
    }
}

/// The moderation in force for `record` (recomputed when its log grew).
pub(super) fn moderation(book: &mut ChatBook, record: &DropRecord) -> Arc<ChatModeration> {
    if book.moderation_len != Some(record.log.len()) {
        book.moderation = Arc::new(ChatModeration::of(&record.log));
        book.moderation_len = Some(record.log.len());
    }
    Arc::clone(&book.moderation)
}

/// A refused `chat`'s answer.
pub(super) fn refused(rid: String, reason: &str, retry_after_ms: Option<u64>) -> ServerMsg {
    ServerMsg::ChatResult {
        rid,
        ok: false,
        id: None,
        reason: Some(reason.to_owned()),
        retry_after_ms,
    }
}

/// A new message id: 16 random hex digits (unique across nodes).
pub(super) fn message_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Not expected; a time-based id keeps the chat going.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = t.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DropHub {
    /// `{"type":"chat","text","rid"}` from a viewer (`viewer`) or the maker's own
    /// connection (`host`). Answers the sender; an accepted message goes out with the next
    /// tick.
    pub fn chat(&self, viewer: Option<&Viewer>, host: bool, text: &str, rid: String) -> ServerMsg {
        if rid.is_empty() || rid.len() > MAX_RID {
            return ServerMsg::error("bad_frame", format!("rid must be 1-{MAX_RID} characters"));
        }
        if viewer.is_none() && !host {
            return refused(rid, "unauthorized", None);
        }
        let limits = self.ctx.chat;
        let text = match clean_text(text, limits.max_chars) {
            Ok(t) => t,
            Err(TextRefusal::Empty) => return refused(rid, "empty", None),
            Err(TextRefusal::TooLong) => return refused(rid, "too_long", None),
        };
        let now = self.now_ms();
        let mut sh = self.lock();
        let record = Arc::clone(&sh.record);
        let moderation = moderation(&mut sh.chat, &record);
        if sh.view.state == DropState::Closed || (!host && !moderation.enabled) {
            return refused(rid, "chat_off", None);
        }
        if sh.chat.pending.len() >= limits.per_tick {
            return refused(rid, "rate_limited", Some(CHAT_TICK.as_millis() as u64));
        }
        let message = match viewer.filter(|_| !host) {
            Some(viewer) => {
                match moderation.silenced(&viewer.id, now) {
                    Some(Silenced::Banned) => return refused(rid, "banned", None),
                    Some(Silenced::MutedUntil(until)) => {
                        return refused(rid, "muted", Some(until - now));
                    }
                    None => {}
                }
                if moderation.blocked_in(text).is_some() {
                    return refused(rid, "blocked_word", None);
                }
                if let Err((reason, wait)) = pace(&mut sh, &viewer.id, now, &moderation, limits) {
                    return refused(rid, reason, Some(wait));
                }
                ChatMessage {
                    id: message_id(),
                    author: viewer.handle.clone(),
                    text: text.to_owned(),
                    at_ms: now,
                    host: false,
                    viewer_id: None,
                }
            }
            None => host_message(text, now),
        };
        if let Some(viewer) = viewer.filter(|_| !host) {
            if sh.chat.authors.len() >= AUTHORS {
                sh.chat.authors.pop_front();
            }
            sh.chat
                .authors
                .push_back((message.id.clone(), viewer.id.clone()));
        }
        let id = message.id.clone();
        self.queue_chat(&mut sh, message);
        ServerMsg::ChatResult {
            rid,
            ok: true,
            id: Some(id),
            reason: None,
            retry_after_ms: None,
        }
    }

    /// Puts a message in the buffer of the next tick.
    pub(super) fn queue_chat(&self, sh: &mut HubState, message: ChatMessage) {
        sh.chat.pending.push(message);
        if sh.chat.pending.len() == 1 {
            self.chat_waiting.notify_one();
        }
    }

    /// The tick: the buffered messages as one `chat` broadcast (nothing when empty).
    pub(super) fn flush_chat(&self) {
        let mut sh = self.lock();
        if sh.chat.pending.is_empty() {
            return;
        }
        let messages = std::mem::take(&mut sh.chat.pending);
        let mark = || (Mark::Always, Resend::Nothing);
        self.publish(&mut sh, mark, |seq, ts| ServerMsg::Chat {
            seq,
            ts,
            messages: messages.clone(),
        });
    }

    /// The chat as a snapshot shows it (`viewer_ids`: with the authors this node knows).
    pub(super) fn chat_view(&self, sh: &mut HubState, viewer_ids: bool) -> ChatView {
        let record = Arc::clone(&sh.record);
        let m = moderation(&mut sh.chat, &record);
        let authors: HashMap<&str, &str> = if viewer_ids {
            sh.chat
                .authors
                .iter()
                .map(|(m, v)| (m.as_str(), v.as_str()))
                .collect()
        } else {
            HashMap::new()
        };
        let recent = sh
            .chat
            .recent
            .iter()
            .filter(|msg| !m.deleted.contains(&msg.id))
            .map(|msg| ChatMessage {
                viewer_id: authors.get(msg.id.as_str()).map(|v| (*v).to_owned()),
                ..msg.clone()
            })
            .collect();
        ChatView {
            enabled: m.enabled,
            slow_mode_s: m.slow_mode_s,
            pinned: m.pinned.clone(),
            recent,
        }
    }
}

/// The maker's message.
pub(super) fn host_message(text: &str, now: u64) -> ChatMessage {
    ChatMessage {
        id: message_id(),
        author: HOST_AUTHOR.to_owned(),
        text: text.to_owned(),
        at_ms: now,
        host: true,
        viewer_id: None,
    }
}

/// Checks and takes one message of `viewer_id`'s pace at `now`: slow mode (one message per
/// `slow_mode_s`), then the rate (GCRA: `rate_per_min` a minute, `burst` at once).
fn pace(
    sh: &mut HubState,
    viewer_id: &str,
    now: u64,
    moderation: &ChatModeration,
    limits: ChatLimits,
) -> Result<(), (&'static str, u64)> {
    let interval = 60_000 / u64::from(limits.rate_per_min.max(1));
    let tolerance = interval * u64::from(limits.burst.max(1));
    let paces = &mut sh.chat.paces;
    if paces.len() >= PACES && !paces.contains_key(viewer_id) {
        let slow = u64::from(moderation.slow_mode_s) * 1000;
        paces.retain(|_, p| p.tat_ms > now || p.last_ms + slow > now);
        if paces.len() >= PACES {
            // Every remembered viewer is still within its pace: newcomers wait a tick.
            return Err(("rate_limited", CHAT_TICK.as_millis() as u64));
        }
    }
    let p = paces.get(viewer_id).copied().unwrap_or_default();
    if moderation.slow_mode_s > 0 && p.last_ms > 0 {
        let next = p.last_ms + u64::from(moderation.slow_mode_s) * 1000;
        if next > now {
            return Err(("slow_mode", next - now));
        }
    }
    let tat = p.tat_ms.max(now) + interval;
    if tat > now + tolerance {
        return Err(("rate_limited", tat - now - tolerance));
    }
    paces.insert(
        viewer_id.to_owned(),
        Pace {
            tat_ms: tat,
            last_ms: now,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_grows_with_the_audience_to_a_second() {
        let ms = |viewers| chat_tick(viewers).as_millis();
        assert_eq!([ms(0), ms(999), ms(1_999)], [100, 100, 100]);
        assert_eq!([ms(2_000), ms(5_500), ms(9_999)], [200, 500, 900]);
        assert_eq!(
            [ms(10_000), ms(60_000), ms(u64::MAX)],
            [1_000, 1_000, 1_000]
        );
    }
}
