//! The drop snapshot: the drop with its live state, as `GET /api/v1/drops/{id}` and the
//! WebSocket `snapshot` show it (viewers see less than the maker: [`Audience`]).

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;
use crate::claim::LeaderEntry;
use crate::drop::{DropKind, DropRecord, InventoryItem, StartsAt};
use crate::script::{Cue, CueType, Script};
use crate::timeline::{ClaimWindow, DropState, FiredCue, TimelineView};

use super::StockItem;

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
