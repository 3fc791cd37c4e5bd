//! The viewer WebSocket's frames (`API.md`, "Viewer WebSocket"), and the drop snapshot
//! shared with `GET /api/v1/drops/{id}` (`snapshot`).

use serde::{Deserialize, Serialize};

mod snapshot;

pub use snapshot::{
    Audience, ChatView, CouponView, DropSnapshot, EarlySku, FiredCueView, LiveFigures, NextCue,
};

use crate::chat::ChatMessage;
use crate::claim::LeaderEntry;
use crate::drop::InventoryItem;
use crate::script::Cue;
use crate::timeline::DropState;

/// The largest text frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 16 * 1024;

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        since: Option<u64>,
        /// An anonymous viewer's own random id, kept by its browser (8–64 of letters,
        /// digits, `-` and `_`), so a returning viewer is counted once.
        #[serde(default)]
        visitor: Option<String>,
        /// The maker's admin token: the connection is the maker's (the control panel
        /// watching its drop), which is not counted among the drop's viewers.
        #[serde(default)]
        admin: Option<String>,
    },
    Claim {
        sku: String,
        rid: String,
    },
    /// Asks for a personal code of the unique flash coupon running now.
    Coupon {
        rid: String,
    },
    /// "I'm here": earns the open `be_there` quest `quest` (its script index, or its key
    /// `s{index}` / `a{log position}`; absent: the latest open `be_there` quest).
    Here {
        #[serde(default)]
        quest: Option<QuestRef>,
        rid: String,
    },
    Ping {
        #[serde(default)]
        ts: Option<serde_json::Value>,
    },
    /// A chat message (signed-in viewers and the maker's own connection).
    Chat {
        text: String,
        rid: String,
    },
}

/// Why a client frame was refused; the names are the `error` frame's `code` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    BadJson,
    UnknownType,
    BadFrame,
    TooLarge,
}

impl FrameError {
    pub fn code(self) -> &'static str {
        match self {
            FrameError::BadJson => "bad_json",
            FrameError::UnknownType => "unknown_type",
            FrameError::BadFrame => "bad_frame",
            FrameError::TooLarge => "too_large",
        }
    }
}

const CLIENT_TYPES: [&str; 6] = ["hello", "claim", "coupon", "here", "ping", "chat"];

/// A quest as a client names it: a script cue's index, or a cue key (`s3`, `a7`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QuestRef {
    Index(usize),
    Key(String),
}

impl QuestRef {
    /// The cue key it names (`s{index}` for an index).
    pub fn key(&self) -> String {
        match self {
            QuestRef::Index(i) => format!("s{i}"),
            QuestRef::Key(k) => k.clone(),
        }
    }
}

/// Whether `v` is a well-formed anonymous visitor id.
pub fn valid_visitor(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClientMsg {
    /// Parses one text frame, telling malformed JSON from an unknown `type` from bad fields.
    pub fn parse(text: &str) -> Result<ClientMsg, (FrameError, String)> {
        if text.len() > MAX_CLIENT_FRAME {
            return Err((
                FrameError::TooLarge,
                format!("frames are limited to {MAX_CLIENT_FRAME} bytes"),
            ));
        }
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(msg) => Ok(msg),
            Err(err) => {
                #[derive(Deserialize)]
                struct Typed {
                    #[serde(rename = "type")]
                    kind: String,
                }
                match serde_json::from_str::<Typed>(text) {
                    Ok(Typed { kind }) if !CLIENT_TYPES.contains(&kind.as_str()) => Err((
                        FrameError::UnknownType,
                        format!(
                            "unknown type {:?}; expected one of {}",
                            truncate(&kind, 40),
                            CLIENT_TYPES.join(", ")
                        ),
                    )),
                    Ok(_) => Err((FrameError::BadFrame, err.to_string())),
                    Err(_) if serde_json::from_str::<serde_json::Value>(text).is_ok() => Err((
                        FrameError::BadFrame,
                        "a frame is a JSON object with a string \"type\"".into(),
                    )),
                    Err(_) => Err((FrameError::BadJson, format!("not JSON: {err}"))),
                }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct StockItem {
    pub sku: String,
    pub left: u32,
}

/// A frame from the server. Broadcasts carry `seq` and `ts`; the rest go to one client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Welcome {
        viewer_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle: Option<String>,
        server_ms: u64,
        seq: u64,
        /// True when the hello's `admin` token was the maker's.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        maker: bool,
    },
    Snapshot {
        seq: u64,
        drop: Box<DropSnapshot>,
    },
    State {
        seq: u64,
        ts: u64,
        state: DropState,
        elapsed_s: f64,
        /// The next script cue and when it is due, while live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cue: Option<NextCue>,
    },
    Cue {
        seq: u64,
        ts: u64,
        index: Option<usize>,
        cue: Cue,
        /// When it fired (Unix ms).
        at_ms: u64,
        /// For a `reveal`: the product it reveals, so a viewer can show name and price at once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item: Option<Box<InventoryItem>>,
        /// For a `reveal` with early access: when the public may claim (the early-access
        /// segment may from `at_ms`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        public_ms: Option<u64>,
        /// The next script cue and when it is due, while live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_cue: Option<NextCue>,
    },
    Stock {
        seq: u64,
        ts: u64,
        items: Vec<StockItem>,
    },
    Leaderboard {
        seq: u64,
        ts: u64,
        top: Vec<LeaderEntry>,
    },
    Viewers {
        seq: u64,
        ts: u64,
        count: u64,
    },
    ClaimResult {
        rid: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sku: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold_until_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// With `not_open` during an early-access window: when the public may claim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        opens_at_ms: Option<u64>,
        /// With a grant, when the drop has a follow-up: the cross-sell and the coupon.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up: Option<Box<crate::followup::ClaimFollowUp>>,
    },
    CouponResult {
        rid: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent_off: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The answer to `here` (to that viewer alone).
    QuestResult {
        rid: String,
        ok: bool,
        /// The quest's key (`s{index}` or `a{log position}`), when one was found.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quest: Option<String>,
        /// With `ok`: the points it earned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        points: Option<u32>,
        /// Without `ok`: `not_open` (no such open quest), `already_awarded`,
        /// `unauthorized`, `unavailable`, `full` (a `keyword` quest's first N earned it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The answer to `chat` (to the sender alone).
    ChatResult {
        rid: String,
        ok: bool,
        /// With `ok`: the message's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Without `ok`: `unauthorized`, `empty`, `too_long`, `rate_limited`, `slow_mode`,
        /// `muted`, `banned`, `blocked_word`, `chat_off`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// With `rate_limited`, `slow_mode` and `muted`: when to try again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Chat messages, coalesced: at most one frame per drop per 100 ms.
    Chat {
        seq: u64,
        ts: u64,
        messages: Vec<ChatMessage>,
    },
    /// The host deleted messages.
    ChatDelete {
        seq: u64,
        ts: u64,
        ids: Vec<String>,
    },
    /// The host pinned a message (`null`: unpinned).
    ChatPin {
        seq: u64,
        ts: u64,
        message: Option<ChatMessage>,
    },
    /// The host changed the chat's settings.
    ChatSettings {
        seq: u64,
        ts: u64,
        enabled: bool,
        slow_mode_s: u32,
    },
    Pong {
        ts: Option<serde_json::Value>,
        server_ms: u64,
    },
    Error {
        code: String,
        message: String,
    },
}

/// The `viewers` broadcast's text around its numbers: `[0]` seq `[1]` ts `[2]` count `[3]`
/// is what [`ServerMsg::Viewers`] serializes to (a test checks), for a writer that fills
/// the numbers in where serde is not at hand: the Redis bus sums the count over every node
/// and numbers the frame inside a script, which gets these pieces rendered in.
pub const VIEWERS_FRAME: [&str; 4] = [
    r#"{"type":"viewers","seq":"#,
    r#","ts":"#,
    r#","count":"#,
    "}",
];

impl ServerMsg {
    /// The broadcast sequence number, for broadcasts.
    pub fn seq(&self) -> Option<u64> {
        match self {
            ServerMsg::State { seq, .. }
            | ServerMsg::Cue { seq, .. }
            | ServerMsg::Stock { seq, .. }
            | ServerMsg::Leaderboard { seq, .. }
            | ServerMsg::Viewers { seq, .. }
            | ServerMsg::Chat { seq, .. }
            | ServerMsg::ChatDelete { seq, .. }
            | ServerMsg::ChatPin { seq, .. }
            | ServerMsg::ChatSettings { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_told_apart() {
        assert!(matches!(
            ClientMsg::parse(r#"{"type":"hello","since":4}"#),
            Ok(ClientMsg::Hello {
                since: Some(4),
                token: None,
                visitor: None,
                admin: None
            })
        ));
        assert_eq!(
            ClientMsg::parse("{nope").unwrap_err().0,
            FrameError::BadJson
        );
        assert_eq!(
            ClientMsg::parse(r#"{"type":"dance"}"#).unwrap_err().0,
            FrameError::UnknownType
        );
        assert_eq!(
            ClientMsg::parse(r#"{"type":"claim"}"#).unwrap_err().0,
            FrameError::BadFrame
        );
        assert_eq!(
            ClientMsg::parse("[1,2]").unwrap_err().0,
            FrameError::BadFrame
        );
        let big = format!(
            r#"{{"type":"ping","ts":"{}"}}"#,
            "x".repeat(MAX_CLIENT_FRAME)
        );
        assert_eq!(ClientMsg::parse(&big).unwrap_err().0, FrameError::TooLarge);
    }

    #[test]
    fn the_viewers_frame_pieces_are_the_serialized_frame() {
        for (seq, ts, count) in [
            (0, 0, 0),
            (7, 1000, 3),
            (u64::MAX, 1_800_000_000_000, 12_345),
        ] {
            let [a, b, c, d] = VIEWERS_FRAME;
            assert_eq!(
                format!("{a}{seq}{b}{ts}{c}{count}{d}"),
                serde_json::to_string(&ServerMsg::Viewers { seq, ts, count }).unwrap()
            );
        }
    }

    #[test]
    fn chat_frames_are_as_the_api_says() {
        assert_eq!(
            ClientMsg::parse(r#"{"type":"chat","text":"hi","rid":"c1"}"#),
            Ok(ClientMsg::Chat {
                text: "hi".into(),
                rid: "c1".into()
            })
        );
        assert_eq!(
            ClientMsg::parse(r#"{"type":"chat","rid":"c1"}"#)
                .unwrap_err()
                .0,
            FrameError::BadFrame
        );
        let msg = ChatMessage {
            id: "m1".into(),
            author: "ana".into(),
            text: "hi".into(),
            at_ms: 5,
            host: false,
            viewer_id: None,
        };
        let chat = ServerMsg::Chat {
            seq: 3,
            ts: 9,
            messages: vec![msg],
        };
        assert_eq!(
            serde_json::to_string(&chat).unwrap(),
            r#"{"type":"chat","seq":3,"ts":9,"messages":[{"id":"m1","author":"ana","text":"hi","at_ms":5,"host":false}]}"#
        );
        assert_eq!(chat.seq(), Some(3));
        let unpin = ServerMsg::ChatPin {
            seq: 4,
            ts: 9,
            message: None,
        };
        assert_eq!(
            serde_json::to_string(&unpin).unwrap(),
            r#"{"type":"chat_pin","seq":4,"ts":9,"message":null}"#
        );
        let refused = ServerMsg::ChatResult {
            rid: "c1".into(),
            ok: false,
            id: None,
            reason: Some("slow_mode".into()),
            retry_after_ms: Some(1500),
        };
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"type":"chat_result","rid":"c1","ok":false,"reason":"slow_mode","retry_after_ms":1500}"#
        );
        // What a snapshot without `chat` (an older server's) reads as: on, nothing pinned.
        let view: ChatView =
            serde_json::from_str(r#"{"enabled":true,"slow_mode_s":0,"pinned":null,"recent":[]}"#)
                .unwrap();
        assert_eq!(view, ChatView::default());
    }

    #[test]
    fn broadcasts_serialize_as_the_api_says() {
        let msg = ServerMsg::Viewers {
            seq: 7,
            ts: 1000,
            count: 3,
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"viewers","seq":7,"ts":1000,"count":3}"#
        );
        let res = ServerMsg::ClaimResult {
            rid: "r1".into(),
            ok: false,
            code: None,
            sku: None,
            hold_until_ms: None,
            reason: Some("sold_out".into()),
            opens_at_ms: None,
            follow_up: None,
        };
        assert_eq!(
            serde_json::to_string(&res).unwrap(),
            r#"{"type":"claim_result","rid":"r1","ok":false,"reason":"sold_out"}"#
        );
    }
}
