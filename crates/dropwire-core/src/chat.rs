//! Chat in a drop: the message as viewers see it, the host's moderation (settings, mutes
//! and bans, deletes, the pin) as entries of the drop's control log, and the rules a
//! message meets (length, blocked words).
//!
//! Moderation lives in the control log ([`ControlAction::Chat`](crate::ControlAction)), so
//! every hub node reads the same settings, mutes, deletes and pin from the log it already
//! shares, and they survive a restart. The timeline ignores those entries. Message text is
//! not durable: the hub keeps the latest messages and its broadcast history only.
//!
//! [`ChatModeration::of`] folds the log into the moderation in force; it is pure (a mute's
//! end is a time, compared with `now` by the caller).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::timeline::{ControlAction, ControlEntry};

/// The default longest message, in Unicode scalar values.
pub const DEFAULT_MAX_CHARS: usize = 280;
/// The longest slow mode, in seconds.
pub const MAX_SLOW_MODE_S: u32 = 3600;
/// At most this many blocked words per drop.
pub const MAX_BLOCKED_WORDS: usize = 200;
/// A blocked word is 1 to this many characters.
pub const MAX_WORD_CHARS: usize = 40;
/// The longest mute, in seconds.
pub const MAX_MUTE_S: u32 = 86_400;
/// Messages a snapshot shows (the latest, oldest first).
pub const RECENT: usize = 50;

/// One chat message, as broadcast (`viewer_id` only in the maker's moderation view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub id: String,
    /// The author's display handle (never the viewer id); the drop's title for the host.
    pub author: String,
    pub text: String,
    pub at_ms: u64,
    #[serde(default)]
    pub host: bool,
    /// The author's viewer id: for the maker alone (`GET /api/v1/drops/{id}/chat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_id: Option<String>,
}

/// One moderation step of the host, as a control-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChatOp {
    /// Changes the settings given (the others stay).
    Settings {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slow_mode_s: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocked_words: Option<Vec<String>>,
    },
    /// Mutes a viewer until `until_ms` (`None`: a ban, for the drop's life).
    Mute {
        viewer_id: String,
        #[serde(default)]
        until_ms: Option<u64>,
        #[serde(default)]
        ban: bool,
    },
    /// Lifts a viewer's mute or ban.
    Unmute { viewer_id: String },
    /// Deletes messages.
    Delete { ids: Vec<String> },
    /// Pins a message (kept whole, so the pin outlives the message buffer), or unpins.
    Pin {
        #[serde(default)]
        message: Option<ChatMessage>,
    },
}

/// A viewer's mute or ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ChatMute {
    pub viewer_id: String,
    /// When the mute ends (Unix ms); `null` for a ban.
    pub until_ms: Option<u64>,
    pub ban: bool,
}

/// The moderation in force: what the control log's chat entries add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatModeration {
    pub enabled: bool,
    pub slow_mode_s: u32,
    pub blocked_words: Vec<String>,
    pub mutes: BTreeMap<String, ChatMute>,
    pub deleted: BTreeSet<String>,
    pub pinned: Option<ChatMessage>,
}

impl Default for ChatModeration {
    fn default() -> Self {
        ChatModeration {
            enabled: true,
            slow_mode_s: 0,
            blocked_words: Vec::new(),
            mutes: BTreeMap::new(),
            deleted: BTreeSet::new(),
            pinned: None,
        }
    }
}

/// Why a viewer's mute refuses a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silenced {
    Banned,
    /// Muted until this time (Unix ms).
    MutedUntil(u64),
}

impl ChatModeration {
    /// The moderation the log's chat entries set, in order.
    pub fn of(log: &[ControlEntry]) -> Self {
        let mut m = ChatModeration::default();
        for entry in log {
            if let ControlAction::Chat { op } = &entry.action {
                m.apply(op);
            }
        }
        m
    }

    /// Takes one moderation step.
    pub fn apply(&mut self, op: &ChatOp) {
        match op {
            ChatOp::Settings {
                enabled,
                slow_mode_s,
                blocked_words,
            } => {
                if let Some(e) = enabled {
                    self.enabled = *e;
                }
                if let Some(s) = slow_mode_s {
                    self.slow_mode_s = *s;
                }
                if let Some(w) = blocked_words {
                    self.blocked_words = w.iter().map(|w| w.to_lowercase()).collect();
                }
            }
            ChatOp::Mute {
                viewer_id,
                until_ms,
                ban,
            } => {
                let mute = ChatMute {
                    viewer_id: viewer_id.clone(),
                    until_ms: if *ban { None } else { *until_ms },
                    ban: *ban || until_ms.is_none(),
                };
                self.mutes.insert(viewer_id.clone(), mute);
            }
            ChatOp::Unmute { viewer_id } => {
                self.mutes.remove(viewer_id);
            }
            ChatOp::Delete { ids } => {
                self.deleted.extend(ids.iter().cloned());
                if self.pinned.as_ref().is_some_and(|p| ids.contains(&p.id)) {
                    self.pinned = None;
                }
            }
            ChatOp::Pin { message } => self.pinned = message.clone(),
        }
    }

    /// Whether `viewer_id` is muted or banned at `now_ms`.
    pub fn silenced(&self, viewer_id: &str, now_ms: u64) -> Option<Silenced> {
        let mute = self.mutes.get(viewer_id)?;
        match mute.until_ms {
            _ if mute.ban => Some(Silenced::Banned),
            Some(until) if until > now_ms => Some(Silenced::MutedUntil(until)),
            Some(_) => None,
            None => Some(Silenced::Banned),
        }
    }

    /// The mutes still in force at `now_ms`.
    pub fn mutes_at(&self, now_ms: u64) -> Vec<ChatMute> {
        self.mutes
            .values()
            .filter(|m| m.ban || m.until_ms.is_some_and(|u| u > now_ms))
            .cloned()
            .collect()
    }

    /// The first blocked word `text` contains (whole word, case-insensitive).
    pub fn blocked_in(&self, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        self.blocked_words
            .iter()
            .find(|w| has_word_lower(&lower, w))
            .map(String::as_str)
    }
}

/// Why a message text is refused before any moderation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRefusal {
    Empty,
    TooLong,
}

/// The text trimmed, if it holds 1 to `max_chars` Unicode scalar values.
pub fn clean_text(text: &str, max_chars: usize) -> Result<&str, TextRefusal> {
    let t = text.trim();
    if t.is_empty() {
        return Err(TextRefusal::Empty);
    }
    if t.chars().nth(max_chars).is_some() {
        return Err(TextRefusal::TooLong);
    }
    Ok(t)
}

/// Whether `text` contains `word` as a whole word, after Unicode lowercasing of both.
pub fn has_word(text: &str, word: &str) -> bool {
    has_word_lower(&text.to_lowercase(), &word.to_lowercase())
}

fn has_word_lower(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let start = from + at;
        let end = start + word.len();
        let before = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word(c));
        let after = text[end..].chars().next().is_none_or(|c| !is_word(c));
        if before && after {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Checks a list of blocked words: at most [`MAX_BLOCKED_WORDS`], each 1 to
/// [`MAX_WORD_CHARS`] characters once trimmed. Returns them trimmed, or what is wrong.
pub fn check_words(words: &[String]) -> Result<Vec<String>, String> {
    if words.len() > MAX_BLOCKED_WORDS {
        return Err(format!("at most {MAX_BLOCKED_WORDS} blocked words"));
    }
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let t = w.trim();
            let n = t.chars().count();
            if n == 0 || n > MAX_WORD_CHARS {
                Err(format!(
                    "blocked_words[{i}] must be 1-{MAX_WORD_CHARS} characters"
                ))
            } else {
                Ok(t.to_owned())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, op: ChatOp) -> ControlEntry {
        ControlEntry {
            at_ms,
            action: ControlAction::Chat { op },
        }
    }

    #[test]
    fn words_match_whole_and_without_case() {
        assert!(has_word("Buy CHEAP mugs", "cheap"));
        assert!(has_word("cheap!", "Cheap"));
        assert!(!has_word("cheapest mugs", "cheap"));
        assert!(!has_word("uncheap", "cheap"));
        assert!(has_word("ÉCLAIR time", "éclair"));
        assert!(has_word("a b", "a b"));
        assert!(!has_word("anything", ""));
        assert!(has_word("mugmug mug", "mug"));
    }

    #[test]
    fn text_is_trimmed_and_counted_in_scalar_values() {
        assert_eq!(clean_text("  hi ", 280), Ok("hi"));
        assert_eq!(clean_text(" \n ", 280), Err(TextRefusal::Empty));
        assert_eq!(clean_text(&"é".repeat(280), 280).map(str::len), Ok(560));
        assert_eq!(clean_text(&"é".repeat(281), 280), Err(TextRefusal::TooLong));
    }

    #[test]
    fn the_log_folds_into_the_moderation() {
        let msg = ChatMessage {
            id: "m1".into(),
            author: "Host".into(),
            text: "hi".into(),
            at_ms: 5,
            host: true,
            viewer_id: None,
        };
        let log = vec![
            entry(
                1,
                ChatOp::Settings {
                    enabled: None,
                    slow_mode_s: Some(10),
                    blocked_words: Some(vec!["Spam".into()]),
                },
            ),
            entry(
                2,
                ChatOp::Mute {
                    viewer_id: "v1".into(),
                    until_ms: Some(1000),
                    ban: false,
                },
            ),
            entry(
                3,
                ChatOp::Mute {
                    viewer_id: "v2".into(),
                    until_ms: None,
                    ban: true,
                },
            ),
            entry(4, ChatOp::Pin { message: Some(msg) }),
            entry(
                5,
                ChatOp::Delete {
                    ids: vec!["m1".into(), "m2".into()],
                },
            ),
            entry(
                6,
                ChatOp::Unmute {
                    viewer_id: "v3".into(),
                },
            ),
        ];
        let m = ChatModeration::of(&log);
        assert!(m.enabled);
        assert_eq!(m.slow_mode_s, 10);
        assert_eq!(m.blocked_in("no SPAM here"), Some("spam"));
        assert_eq!(m.silenced("v1", 999), Some(Silenced::MutedUntil(1000)));
        assert_eq!(m.silenced("v1", 1000), None);
        assert_eq!(m.silenced("v2", u64::MAX), Some(Silenced::Banned));
        assert_eq!(m.pinned, None, "deleting the pinned message unpins it");
        assert_eq!(m.deleted.len(), 2);
        assert_eq!(m.mutes_at(1000).len(), 1);
        let mut lifted = log.clone();
        lifted.push(entry(
            7,
            ChatOp::Unmute {
                viewer_id: "v2".into(),
            },
        ));
        assert_eq!(ChatModeration::of(&lifted).silenced("v2", 0), None);
    }

    #[test]
    fn blocked_word_lists_are_checked() {
        assert_eq!(check_words(&[" a ".into()]), Ok(vec!["a".into()]));
        assert!(check_words(&["".into()]).is_err());
        assert!(check_words(&["x".repeat(41)]).is_err());
        assert!(check_words(&vec!["w".to_owned(); 201]).is_err());
    }
}
