//! The script: cues at offsets from the start, and the rules a script must keep.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::drop::InventoryItem;
use crate::error::CoreError;

/// The longest drop a script may describe (a micro-event; 4 hours is already absurd).
pub const MAX_DURATION_S: u32 = 4 * 60 * 60;
/// The most cues one script may hold.
pub const MAX_CUES: usize = 500;
/// The longest title or body text of a cue, in characters.
pub const MAX_TEXT: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Script {
    #[cfg_attr(feature = "utoipa", schema(minimum = 1, maximum = 14_400))]
    pub duration_s: u32,
    #[cfg_attr(feature = "utoipa", schema(min_items = 1, max_items = 500))]
    pub cues: Vec<Cue>,
}

/// What a cue does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CueType {
    Intro,
    /// Shows a product card and opens claims on its `sku`.
    Reveal,
    /// A coupon: a shared `code`, or (`unique`) a personal code for each of the first `limit` viewers.
    FlashCoupon,
    /// A stock nudge.
    Scarcity,
    /// A timed challenge that awards `points`.
    Quest,
    Cta,
    SoftClose,
    /// Ends the drop: claims close.
    Close,
}

impl CueType {
    pub fn as_str(self) -> &'static str {
        match self {
            CueType::Intro => "intro",
            CueType::Reveal => "reveal",
            CueType::FlashCoupon => "flash_coupon",
            CueType::Scarcity => "scarcity",
            CueType::Quest => "quest",
            CueType::Cta => "cta",
            CueType::SoftClose => "soft_close",
            CueType::Close => "close",
        }
    }
}

/// What a `quest` cue asks of a viewer within its window (`ttl_s` after it fires).
/// (`keyword`, a word sent in chat, waits for chat.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum QuestKind {
    /// Tap "I'm here" (the `here` frame) within the window.
    BeThere,
    /// Be granted a claim (any SKU) within the window.
    ClaimWithin,
    /// Redeem a claim within the window.
    RedeemWithin,
    /// Send the cue's `word` in chat within the window (the first `first_n`, or all).
    Keyword,
}

impl QuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestKind::BeThere => "be_there",
            QuestKind::ClaimWithin => "claim_within",
            QuestKind::RedeemWithin => "redeem_within",
            QuestKind::Keyword => "keyword",
        }
    }
}

/// One cue. Fields beyond `at_s` and `type` depend on the type; [`Script::validate`] checks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Cue {
    /// Offset from the start, in seconds of live time (pauses do not count). Ignored for ad-hoc cues.
    #[serde(default)]
    pub at_s: u32,
    #[serde(rename = "type")]
    pub kind: CueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(max_length = 500))]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(max_length = 500))]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// `reveal`: the SKU whose claims it opens; `scarcity`: the SKU it nudges (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    /// `flash_coupon`: the shared code (absent when `unique`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<u32>,
    /// `flash_coupon`: how long the coupon is valid; `quest`: how long the challenge runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u32>,
    /// `flash_coupon`: hand out personal codes instead of one shared code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
    /// `flash_coupon` with `unique`: how many personal codes exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `quest`: leaderboard points it awards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<u32>,
    /// `quest`: what earns the points within the window (`ttl_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quest: Option<QuestKind>,
    /// `keyword` quest: the word to send in chat (1–40 characters; whole word, any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 40))]
    pub word: Option<String>,
    /// `keyword` quest: only the first this many viewers earn it (1–100000; absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(minimum = 1, maximum = 100000))]
    pub first_n: Option<u32>,
}

impl Cue {
    /// A cue of the given type with nothing else set (for tests and ad-hoc cues).
    pub fn new(at_s: u32, kind: CueType) -> Self {
        Cue {
            at_s,
            kind,
            title: None,
            body: None,
            image_url: None,
            sku: None,
            code: None,
            percent_off: None,
            ttl_s: None,
            unique: false,
            limit: None,
            points: None,
            quest: None,
            word: None,
            first_n: None,
        }
    }

    pub fn at_ms(&self) -> u64 {
        u64::from(self.at_s) * 1000
    }

    /// Checks the fields this cue's type needs. `field` is the JSON path used in messages.
    pub fn validate(&self, field: &str, inventory: &[InventoryItem]) -> Result<(), CoreError> {
        let what = self.kind.as_str();
        let err = |sub: &str, msg: String| CoreError::invalid(format!("{field}.{sub}"), msg);
        for (name, text) in [("title", &self.title), ("body", &self.body)] {
            if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
                return Err(err(
                    name,
                    format!("{what} cue: longer than {MAX_TEXT} characters"),
                ));
            }
        }
        if let Some(url) = &self.image_url {
            let ok =
                (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
                    && url.len() <= 2048;
            if !ok {
                return Err(err(
                    "image_url",
                    format!("{what} cue: image_url must be an http(s) URL or a path"),
                ));
            }
        }
        let known_sku = |sku: &str| inventory.iter().any(|i| i.sku == sku);
        match self.kind {
            CueType::Reveal => match &self.sku {
                None => {
                    return Err(err(
                        "sku",
                        "reveal cue: names no sku; a reveal opens claims on one SKU".into(),
                    ));
                }
                Some(s) if !known_sku(s) => {
                    return Err(err(
                        "sku",
                        format!("reveal cue: unknown sku {s:?}; it is not in the inventory"),
                    ));
                }
                Some(_) => {}
            },
            CueType::Scarcity => {
                if let Some(s) = &self.sku
                    && !known_sku(s)
                {
                    return Err(err(
                        "sku",
                        format!("scarcity cue: unknown sku {s:?}; it is not in the inventory"),
                    ));
                }
            }
            CueType::FlashCoupon => {
                match self.percent_off {
                    Some(1..=100) => {}
                    _ => {
                        return Err(err(
                            "percent_off",
                            "flash_coupon cue: percent_off must be 1-100".into(),
                        ));
                    }
                }
                match self.ttl_s {
                    Some(1..=86_400) => {}
                    _ => {
                        return Err(err(
                            "ttl_s",
                            "flash_coupon cue: ttl_s must be 1-86400 seconds".into(),
                        ));
                    }
                }
                if self.unique {
                    if self.code.is_some() {
                        return Err(err("code", "flash_coupon cue: a unique coupon hands out personal codes; drop the shared code".into()));
                    }
                    match self.limit {
                        Some(1..=100_000) => {}
                        _ => {
                            return Err(err(
                                "limit",
                                "flash_coupon cue: a unique coupon needs limit 1-100000".into(),
                            ));
                        }
                    }
                } else {
                    let ok = self.code.as_ref().is_some_and(|c| {
                        (1..=32).contains(&c.len())
                            && c.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                    if !ok {
                        return Err(err("code", "flash_coupon cue: needs a shared code of 1-32 letters, digits, - or _ (or \"unique\": true with a limit)".into()));
                    }
                }
            }
            CueType::Quest => {
                match self.points {
                    Some(1..=10_000) => {}
                    _ => return Err(err("points", "quest cue: points must be 1-10000".into())),
                }
                // Without a kind the quest is shown and awards nothing (as before kinds
                // existed); with one, its window is needed.
                match (self.quest, self.ttl_s) {
                    (_, Some(1..=86_400)) | (None, None) => {}
                    (None, Some(_)) => {
                        return Err(err(
                            "ttl_s",
                            "quest cue: ttl_s must be 1-86400 seconds".into(),
                        ));
                    }
                    (Some(_), _) => {
                        return Err(err(
                            "ttl_s",
                            "quest cue: needs its window, ttl_s 1-86400 seconds after it fires"
                                .into(),
                        ));
                    }
                }
                if self.quest == Some(QuestKind::Keyword) {
                    let n = self.word.as_deref().map_or(0, |w| w.trim().chars().count());
                    if !(1..=40).contains(&n) {
                        return Err(err(
                            "word",
                            "keyword quest: needs its word, 1-40 characters".into(),
                        ));
                    }
                    if self.first_n.is_some_and(|n| !(1..=100_000).contains(&n)) {
                        return Err(err(
                            "first_n",
                            "keyword quest: first_n must be 1-100000".into(),
                        ));
                    }
                }
            }
            CueType::Intro | CueType::Cta | CueType::SoftClose | CueType::Close => {}
        }
        Ok(())
    }
}

impl Script {
    /// Checks the script against the inventory. The message names the cue and the rule.
    pub fn validate(&self, inventory: &[InventoryItem]) -> Result<(), CoreError> {
        if self.duration_s == 0 || self.duration_s > MAX_DURATION_S {
            return Err(CoreError::invalid(
                "script.duration_s",
                format!(
                    "must be 1-{MAX_DURATION_S} seconds, not {}",
                    self.duration_s
                ),
            ));
        }
        if self.cues.is_empty() {
            return Err(CoreError::invalid(
                "script.cues",
                "a script needs at least one cue",
            ));
        }
        if self.cues.len() > MAX_CUES {
            return Err(CoreError::invalid(
                "script.cues",
                format!("at most {MAX_CUES} cues"),
            ));
        }
        let mut prev = 0;
        let mut coupon_codes = HashSet::new();
        for (i, cue) in self.cues.iter().enumerate() {
            let field = format!("script.cues[{i}]");
            let what = cue.kind.as_str();
            if cue.at_s < prev {
                return Err(CoreError::invalid(
                    format!("{field}.at_s"),
                    format!(
                        "{what} cue at {}s comes before the cue above it at {prev}s; cues must be in time order",
                        cue.at_s
                    ),
                ));
            }
            if cue.at_s > self.duration_s {
                return Err(CoreError::invalid(
                    format!("{field}.at_s"),
                    format!(
                        "{what} cue at {}s is past the end of the script (duration_s {})",
                        cue.at_s, self.duration_s
                    ),
                ));
            }
            if cue.kind == CueType::Close && i + 1 != self.cues.len() {
                return Err(CoreError::invalid(
                    field.clone(),
                    "close cue: must be the last cue",
                ));
            }
            if let Some(code) = &cue.code
                && !coupon_codes.insert(code.to_ascii_uppercase())
            {
                return Err(CoreError::invalid(
                    format!("{field}.code"),
                    format!("flash_coupon cue: duplicate code {code:?}"),
                ));
            }
            cue.validate(&field, inventory)?;
            prev = cue.at_s;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Vec<InventoryItem> {
        vec![InventoryItem {
            sku: "mug".into(),
            name: "Mug".into(),
            price_cents: 3400,
            stock: 40,
            per_viewer_limit: 1,
            image_url: None,
            fair_start_ms: 0,
            variants: Vec::new(),
        }]
    }

    fn script(cues: Vec<Cue>) -> Script {
        Script {
            duration_s: 600,
            cues,
        }
    }

    fn reveal(at: u32, sku: &str) -> Cue {
        Cue {
            sku: Some(sku.into()),
            ..Cue::new(at, CueType::Reveal)
        }
    }

    fn message(s: &Script) -> String {
        s.validate(&inventory()).unwrap_err().to_string()
    }

    #[test]
    fn a_good_script_passes() {
        let s = script(vec![
            Cue::new(0, CueType::Intro),
            reveal(90, "mug"),
            Cue::new(600, CueType::Close),
        ]);
        assert_eq!(s.validate(&inventory()), Ok(()));
    }

    #[test]
    fn a_quest_needs_its_points_and_with_a_kind_its_window() {
        let quest = Cue {
            quest: Some(QuestKind::BeThere),
            points: Some(50),
            ttl_s: Some(60),
            ..Cue::new(10, CueType::Quest)
        };
        assert_eq!(script(vec![quest.clone()]).validate(&inventory()), Ok(()));
        // Without a kind: shown, awarding nothing (scripts written before kinds still load).
        let shown = Cue {
            quest: None,
            ttl_s: None,
            ..quest.clone()
        };
        assert_eq!(script(vec![shown]).validate(&inventory()), Ok(()));
        for (cue, field) in [
            (
                Cue {
                    points: None,
                    ..quest.clone()
                },
                "points",
            ),
            (
                Cue {
                    ttl_s: None,
                    ..quest.clone()
                },
                "ttl_s",
            ),
        ] {
            let m = message(&script(vec![reveal(1, "mug"), cue]));
            assert!(
                m.starts_with(&format!("script.cues[1].{field}:")) && m.contains("quest cue"),
                "{m}"
            );
        }
        let kind: Cue = serde_json::from_value(serde_json::json!(
            {"at_s": 1, "type": "quest", "quest": "redeem_within", "points": 5, "ttl_s": 9}
        ))
        .unwrap();
        assert_eq!(kind.quest, Some(QuestKind::RedeemWithin));
    }

    #[test]
    fn a_keyword_quest_needs_its_word_and_a_sane_first_n() {
        let keyword = |word: Option<&str>, first_n: Option<u32>| Cue {
            quest: Some(QuestKind::Keyword),
            points: Some(10),
            ttl_s: Some(60),
            word: word.map(str::to_owned),
            first_n,
            ..Cue::new(10, CueType::Quest)
        };
        let ok = script(vec![keyword(Some("glaze"), Some(3))]).validate(&inventory());
        assert_eq!(ok, Ok(()));
        for (cue, field) in [
            (keyword(None, None), "word"),
            (keyword(Some("  "), None), "word"),
            (keyword(Some(&"w".repeat(41)), None), "word"),
            (keyword(Some("glaze"), Some(0)), "first_n"),
            (keyword(Some("glaze"), Some(100_001)), "first_n"),
        ] {
            let m = message(&script(vec![reveal(1, "mug"), cue]));
            assert!(m.starts_with(&format!("script.cues[1].{field}:")), "{m}");
        }
    }

    #[test]
    fn messages_name_the_cue_and_the_rule() {
        let m = message(&script(vec![reveal(90, "mug"), Cue::new(10, CueType::Cta)]));
        assert!(
            m.starts_with("script.cues[1].at_s:") && m.contains("time order"),
            "{m}"
        );
        let m = message(&script(vec![reveal(700, "mug")]));
        assert!(m.contains("cues[0]") && m.contains("past the end"), "{m}");
        let m = message(&script(vec![reveal(1, "cup")]));
        assert!(
            m.contains("cues[0].sku") && m.contains("unknown sku \"cup\""),
            "{m}"
        );
        let m = message(&script(vec![
            Cue::new(5, CueType::Close),
            Cue::new(6, CueType::Cta),
        ]));
        assert!(m.contains("cues[0]") && m.contains("last"), "{m}");
        let coupon = Cue {
            code: Some("A".into()),
            percent_off: Some(10),
            ttl_s: Some(60),
            ..Cue::new(1, CueType::FlashCoupon)
        };
        let m = message(&script(vec![
            coupon.clone(),
            Cue {
                at_s: 2,
                ..coupon.clone()
            },
        ]));
        assert!(m.contains("cues[1].code") && m.contains("duplicate"), "{m}");
        let m = message(&script(vec![Cue {
            percent_off: Some(150),
            ..coupon
        }]));
        assert!(m.contains("percent_off"), "{m}");
        let m = message(&Script {
            duration_s: 0,
            cues: vec![],
        });
        assert!(m.contains("duration_s"), "{m}");
    }
}
