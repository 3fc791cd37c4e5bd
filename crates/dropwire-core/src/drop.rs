//! A drop: what the streamer creates, and what the store keeps.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::ids::DropId;
use crate::script::Script;
use crate::timeline::ControlEntry;

/// The kind of event, for lifetime-value reports by event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    #[default]
    Drop,
    Workshop,
    Demo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryItem {
    pub sku: String,
    pub name: String,
    pub price_cents: u64,
    pub stock: u32,
    #[serde(default = "one")]
    pub per_viewer_limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

fn one() -> u32 {
    1
}

fn default_hold_s() -> u32 {
    900
}

fn default_currency() -> String {
    "EUR".into()
}

/// The create body of `POST /api/v1/drops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub kind: DropKind,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_hold_s")]
    pub hold_s: u32,
    pub inventory: Vec<InventoryItem>,
    pub script: Script,
}

pub const MAX_SKUS: usize = 100;
pub const MAX_STOCK: u32 = 1_000_000;

impl DropSpec {
    /// Checks everything but the id's uniqueness (the store's business).
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(id) = &self.id {
            DropId::parse(id)?;
        }
        let title_len = self.title.chars().count();
        if title_len == 0 || title_len > 200 {
            return Err(CoreError::invalid("title", "must be 1-200 characters"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CoreError::invalid(
                "currency",
                "must be a 3-letter ISO 4217 code such as EUR",
            ));
        }
        if !(10..=86_400).contains(&self.hold_s) {
            return Err(CoreError::invalid("hold_s", "must be 10-86400 seconds"));
        }
        if self.inventory.is_empty() || self.inventory.len() > MAX_SKUS {
            return Err(CoreError::invalid(
                "inventory",
                format!("needs 1-{MAX_SKUS} SKUs"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, item) in self.inventory.iter().enumerate() {
            let f = |sub: &str| format!("inventory[{i}].{sub}");
            let sku_ok = (1..=64).contains(&item.sku.len())
                && item
                    .sku
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !sku_ok {
                return Err(CoreError::invalid(
                    f("sku"),
                    "must be 1-64 letters, digits, -, _ or .",
                ));
            }
            if !seen.insert(item.sku.as_str()) {
                return Err(CoreError::invalid(
                    f("sku"),
                    format!("duplicate sku {:?}", item.sku),
                ));
            }
            if item.name.is_empty() || item.name.chars().count() > 200 {
                return Err(CoreError::invalid(f("name"), "must be 1-200 characters"));
            }
            if item.stock > MAX_STOCK {
                return Err(CoreError::invalid(
                    f("stock"),
                    format!("at most {MAX_STOCK}"),
                ));
            }
            if item.per_viewer_limit == 0 || item.per_viewer_limit > 100 {
                return Err(CoreError::invalid(f("per_viewer_limit"), "must be 1-100"));
            }
            if item.price_cents > 100_000_000 {
                return Err(CoreError::invalid(f("price_cents"), "absurd price"));
            }
        }
        self.script.validate(&self.inventory)
    }

    pub fn item(&self, sku: &str) -> Option<&InventoryItem> {
        self.inventory.iter().find(|i| i.sku == sku)
    }
}

/// A drop as the store keeps it: the spec, its id, its OBS key and its control log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    pub id: DropId,
    pub spec: DropSpec,
    /// The secret that lets the OBS page in (`/obs/{id}?key=…`).
    pub obs_key: String,
    pub created_ms: u64,
    pub log: Vec<ControlEntry>,
}
