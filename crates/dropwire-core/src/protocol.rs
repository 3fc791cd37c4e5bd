//! The viewer WebSocket's frames (`API.md`, "Viewer WebSocket"), and the drop snapshot
//! shared with `GET /api/v1/drops/{id}`.

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;
use crate::claim::LeaderEntry;
use crate::drop::{DropKind, DropRecord, InventoryItem, StartsAt};
use crate::script::{Cue, CueType, Script};
use crate::timeline::{ClaimWindow, DropState, FiredCue, TimelineView};

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
        /// `unauthorized`, `unavailable`.
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct FiredCueView {
    pub index: Option<usize>,
    pub at_ms: u64,
    pub cue: Cue,
}

impl From<&FiredCue> for FiredCueView {
    fn from(f: &FiredCue) -> Self {
        FiredCueView {
            index: f.index(),
            at_ms: f.at_ms,
            cue: f.cue.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct NextCue {
    pub index: usize,
    #[serde(rename = "type")]
    pub kind: CueType,
    pub at_ms: u64,
}

impl NextCue {
    /// The next script cue of `view`, if the drop is live.
    pub fn of(view: &TimelineView, script: &Script) -> Option<NextCue> {
        view.next.map(|(index, at_ms)| NextCue {
            index,
            kind: script.cues[index].kind,
            at_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct CouponView {
    pub index: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The shared code; absent for a unique coupon (ask with a `coupon` frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub percent_off: u32,
    pub unique: bool,
    pub expires_ms: u64,
}

/// Who a snapshot is for: viewers must not see unrevealed products, future cues or the OBS key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Viewer,
    Admin,
}

/// The drop with its live state: `GET /api/v1/drops/{id}` and the WebSocket `snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct DropSnapshot {
    pub id: String,
    pub title: String,
    pub kind: DropKind,
    pub currency: String,
    pub hold_s: u32,
    pub created_ms: u64,
    pub state: DropState,
    pub elapsed_s: f64,
    pub duration_s: u32,
    pub started_ms: Option<u64>,
    pub closed_ms: Option<u64>,
    pub ends_ms: Option<u64>,
    /// Admin: every SKU. Viewer: the revealed ones.
    pub inventory: Vec<InventoryItem>,
    pub fired: Vec<FiredCueView>,
    pub current_cue: Option<FiredCueView>,
    pub next_cue: Option<NextCue>,
    /// SKUs anyone may claim now.
    pub open_skus: Vec<String>,
    /// SKUs in their early-access window: only the segment may claim, the public from `public_ms`.
    #[serde(default)]
    pub early_access: Vec<EarlySku>,
    /// Seconds of early access after each reveal (0: none).
    #[serde(default)]
    pub early_access_s: u32,
    /// The announced start (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub starts_at: Option<StartsAt>,
    /// The drop starts by itself at `starts_at` (unless the streamer acted first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_start: bool,
    pub coupons: Vec<CouponView>,
    pub stock: Vec<StockItem>,
    pub leaderboard: Vec<LeaderEntry>,
    pub viewers: u64,
    pub server_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obs_key: Option<String>,
    /// Admin: the recipe and version the drop was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::recipe::RecipeRef>,
    /// Admin: the maker the drop belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maker: Option<String>,
    /// The drop's chat: settings, the pinned message, the latest messages.
    #[serde(default)]
    pub chat: ChatView,
}

/// The chat as a snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ChatView {
    pub enabled: bool,
    pub slow_mode_s: u32,
    pub pinned: Option<ChatMessage>,
    /// The latest messages (at most 50), oldest first, deleted ones left out.
    pub recent: Vec<ChatMessage>,
}

impl Default for ChatView {
    fn default() -> Self {
        ChatView {
            enabled: true,
            slow_mode_s: 0,
            pinned: None,
            recent: Vec::new(),
        }
    }
}

/// A SKU in its early-access window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct EarlySku {
    pub sku: String,
    pub public_ms: u64,
}

/// Live figures that come from the store and the hub rather than the timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFigures {
    pub stock: Vec<StockItem>,
    pub leaderboard: Vec<LeaderEntry>,
    pub viewers: u64,
}

impl DropSnapshot {
    pub fn build(
        record: &DropRecord,
        view: &TimelineView,
        live: LiveFigures,
        now_ms: u64,
        audience: Audience,
    ) -> Self {
        let spec = &record.spec;
        let admin = audience == Audience::Admin;
        let visible = |sku: &str| admin || view.is_revealed(sku);
        let early = spec.early_access_ms();
        DropSnapshot {
            id: record.id.to_string(),
            title: spec.title.clone(),
            kind: spec.kind,
            currency: spec.currency.clone(),
            hold_s: spec.hold_s,
            created_ms: record.created_ms,
            state: view.state,
            elapsed_s: view.elapsed_ms as f64 / 1000.0,
            duration_s: spec.script.duration_s,
            started_ms: view.started_ms,
            closed_ms: view.closed_ms,
            ends_ms: view.ends_ms,
            inventory: spec
                .inventory
                .iter()
                .filter(|i| visible(&i.sku))
                .cloned()
                .collect(),
            fired: view.fired.iter().map(FiredCueView::from).collect(),
            current_cue: view.current().map(FiredCueView::from),
            next_cue: view.next.map(|(index, at_ms)| NextCue {
                index,
                kind: spec.script.cues[index].kind,
                at_ms,
            }),
            open_skus: spec
                .inventory
                .iter()
                .filter(|i| view.window(&i.sku, now_ms, early) == ClaimWindow::Open)
                .map(|i| i.sku.clone())
                .collect(),
            early_access: spec
                .inventory
                .iter()
                .filter_map(|i| match view.window(&i.sku, now_ms, early) {
                    ClaimWindow::EarlyAccess { public_ms } => Some(EarlySku {
                        sku: i.sku.clone(),
                        public_ms,
                    }),
                    _ => None,
                })
                .collect(),
            early_access_s: spec.early_access_s,
            starts_at: spec.starts_at,
            auto_start: spec.auto_start,
            coupons: view
                .active_coupons(now_ms)
                .map(|(f, until)| CouponView {
                    index: f.index(),
                    title: f.cue.title.clone(),
                    code: f.cue.code.clone(),
                    percent_off: f.cue.percent_off.unwrap_or(0),
                    unique: f.cue.unique,
                    expires_ms: until,
                })
                .collect(),
            stock: live.stock.into_iter().filter(|s| visible(&s.sku)).collect(),
            leaderboard: live.leaderboard,
            viewers: live.viewers,
            server_ms: now_ms,
            script: admin.then(|| spec.script.clone()),
            obs_key: admin.then(|| record.obs_key.clone()),
            recipe: if admin { record.recipe.clone() } else { None },
            maker: admin.then(|| record.maker.clone()),
            chat: ChatView::default(),
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
