//! A drop: what the streamer creates, and what the store keeps.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::followup::{FollowUp, NurtureStep, validate_schedule};
use crate::ids::DropId;
use crate::script::Script;
use crate::timeline::ControlEntry;

/// The kind of event, for lifetime-value reports by event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DropKind {
    #[default]
    Drop,
    Workshop,
    Demo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct InventoryItem {
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[A-Za-z0-9._-]{1,64}$"))]
    pub sku: String,
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 200))]
    pub name: String,
    #[cfg_attr(feature = "utoipa", schema(maximum = 100_000_000))]
    pub price_cents: u64,
    #[cfg_attr(feature = "utoipa", schema(maximum = 1_000_000))]
    pub stock: u32,
    #[serde(default = "one")]
    #[cfg_attr(feature = "utoipa", schema(minimum = 1, maximum = 100, default = 1))]
    pub per_viewer_limit: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Fair start: claims in the first this many ms after the SKU opens for the claimant
    /// are entered in a draw and granted in a uniformly random order when the window ends
    /// (0 or absent: off; at most [`MAX_FAIR_START_MS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(feature = "utoipa", schema(maximum = 60_000, default = 0))]
    pub fair_start_ms: u32,
    /// The variants a viewer may name as its size on the waitlist (e.g. `["S", "M", "L"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "utoipa", schema(max_items = 20))]
    pub variants: Vec<String>,
}

fn one() -> u32 {
    1
}

/// The longest fair-start window of a SKU, ms.
pub const MAX_FAIR_START_MS: u32 = 60_000;

fn default_hold_s() -> u32 {
    900
}

fn default_currency() -> String {
    "EUR".into()
}

/// The create body of `POST /api/v1/drops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct DropSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[a-z0-9-]{1,64}$"))]
    pub id: Option<String>,
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 200))]
    pub title: String,
    #[serde(default)]
    pub kind: DropKind,
    #[serde(default = "default_currency")]
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[A-Z]{3}$", default = "EUR"))]
    pub currency: String,
    #[serde(default = "default_hold_s")]
    #[cfg_attr(
        feature = "utoipa",
        schema(minimum = 10, maximum = 86_400, default = 900)
    )]
    pub hold_s: u32,
    #[cfg_attr(feature = "utoipa", schema(min_items = 1, max_items = 100))]
    pub inventory: Vec<InventoryItem>,
    pub script: Script,
    /// The announced start (RFC 3339 in the API): the overlay counts down to it, the
    /// waitlist is open before it, and the launch calendar lists it. The streamer starts
    /// the drop, unless `auto_start` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(value_type = Option<String>, format = DateTime))]
    pub starts_at: Option<StartsAt>,
    /// The drop starts by itself at `starts_at` (which it then needs), once, on one hub
    /// node, unless the streamer has started, paused or closed it before: see
    /// [`crate::schedule`]. Off by default, so a drop made by a client that knows nothing
    /// of it is still started by its streamer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_start: bool,
    /// Seconds after each reveal during which only the drop's early-access segment (its
    /// waitlist) may claim; 0 turns early access off.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(feature = "utoipa", schema(maximum = 3600))]
    pub early_access_s: u32,
    /// The immediate follow-up of each granted claim (confirmation, cross-sell, coupon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
    /// This drop's nurture schedule, instead of the maker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nurture: Option<Vec<NurtureStep>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A moment given as RFC 3339 (`2026-12-24T18:00:00+01:00`), kept as Unix milliseconds and
/// written back in UTC (`2026-12-24T17:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StartsAt(pub u64);

impl StartsAt {
    /// The last moment RFC 3339 can write in UTC: 9999-12-31T23:59:59.999Z.
    pub const MAX_MS: u64 = 253_402_300_799_999;

    pub fn parse(s: &str) -> Result<StartsAt, CoreError> {
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| CoreError::invalid("starts_at", format!("{s:?} is not RFC 3339 ({e})")))?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        let ms =
            u64::try_from(ms).map_err(|_| CoreError::invalid("starts_at", "must be after 1970"))?;
        // A local time late on 9999-12-31 west of UTC is in the year 10000 in UTC, which
        // could not be written back (nor read again from the journal).
        if ms > Self::MAX_MS {
            return Err(CoreError::invalid(
                "starts_at",
                "must be before the year 10000 in UTC",
            ));
        }
        Ok(StartsAt(ms))
    }

    pub fn ms(self) -> u64 {
        self.0
    }

    /// RFC 3339 in UTC, to the millisecond when it has any.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl Serialize for StartsAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for StartsAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StartsAt::parse(&s).map_err(serde::de::Error::custom)
    }
}

pub const MAX_SKUS: usize = 100;
pub const MAX_STOCK: u32 = 1_000_000;
/// The longest early-access window after a reveal.
pub const MAX_EARLY_ACCESS_S: u32 = 3600;
const MAX_VARIANTS: usize = 20;

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
            if item.fair_start_ms > MAX_FAIR_START_MS {
                return Err(CoreError::invalid(
                    f("fair_start_ms"),
                    format!("must be 0-{MAX_FAIR_START_MS} (ms)"),
                ));
            }
            if item.price_cents > 100_000_000 {
                return Err(CoreError::invalid(f("price_cents"), "absurd price"));
            }
            if item.variants.len() > MAX_VARIANTS {
                return Err(CoreError::invalid(
                    f("variants"),
                    format!("at most {MAX_VARIANTS} variants"),
                ));
            }
            let mut names = HashSet::new();
            for (j, v) in item.variants.iter().enumerate() {
                if v.trim().is_empty() || v.chars().count() > 32 || v.chars().any(char::is_control)
                {
                    return Err(CoreError::invalid(
                        f(&format!("variants[{j}]")),
                        "must be 1-32 printable characters",
                    ));
                }
                if !names.insert(v.as_str()) {
                    return Err(CoreError::invalid(
                        f(&format!("variants[{j}]")),
                        format!("duplicate variant {v:?}"),
                    ));
                }
            }
        }
        if self.auto_start && self.starts_at.is_none() {
            return Err(CoreError::invalid(
                "auto_start",
                "needs starts_at: the moment the drop starts by itself",
            ));
        }
        if self.early_access_s > MAX_EARLY_ACCESS_S {
            return Err(CoreError::invalid(
                "early_access_s",
                format!("must be 0-{MAX_EARLY_ACCESS_S} seconds"),
            ));
        }
        if let Some(follow_up) = &self.follow_up {
            follow_up.validate()?;
        }
        if let Some(steps) = &self.nurture {
            validate_schedule(steps, "nurture")?;
        }
        self.script.validate(&self.inventory)
    }

    pub fn item(&self, sku: &str) -> Option<&InventoryItem> {
        self.inventory.iter().find(|i| i.sku == sku)
    }

    /// The early-access window after each reveal, in milliseconds (0: none).
    pub fn early_access_ms(&self) -> u64 {
        u64::from(self.early_access_s) * 1000
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
    /// The recipe (and its version) the drop was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<crate::recipe::RecipeRef>,
    /// The maker (tenant) whose drop it is; records written before makers were tenants
    /// read as the default maker's.
    #[serde(default = "default_maker")]
    pub maker: String,
}

fn default_maker() -> String {
    crate::funnel::DEFAULT_MAKER.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written before makers were tenants (journals, Redis) have no `maker`: they
    /// read as the default maker's, and write it from then on.
    #[test]
    fn fair_start_is_optional_and_at_most_a_minute() {
        let spec = |fair: serde_json::Value| {
            let mut item =
                serde_json::json!({"sku": "a", "name": "A", "price_cents": 1, "stock": 1});
            if !fair.is_null() {
                item["fair_start_ms"] = fair;
            }
            serde_json::from_value::<DropSpec>(serde_json::json!({"title": "Mugs",
                "inventory": [{"sku": "z", "name": "Z", "price_cents": 1, "stock": 1}, item],
                "script": {"duration_s": 60, "cues": [{"at_s": 60, "type": "close"}]}}))
            .expect("a spec")
        };
        let off = spec(serde_json::Value::Null);
        assert_eq!(off.inventory[1].fair_start_ms, 0);
        assert_eq!(off.validate(), Ok(()));
        assert!(
            serde_json::to_value(&off).unwrap()["inventory"][1]
                .get("fair_start_ms")
                .is_none(),
            "absent when off"
        );
        assert!(spec(2000.into()).validate().is_ok());
        assert!(spec(60_000.into()).validate().is_ok());
        match spec(60_001.into()).validate() {
            Err(CoreError::Invalid { field, message }) => {
                assert_eq!(field, "inventory[1].fair_start_ms");
                assert!(message.contains("60000"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_record_without_a_maker_is_the_default_makers() {
        let spec = serde_json::json!({"title": "Mugs", "inventory": [{"sku": "a", "name": "A", "price_cents": 1, "stock": 1}],
            "script": {"duration_s": 60, "cues": []}});
        let old = serde_json::json!({"id": "mugs", "spec": spec, "obs_key": "k", "created_ms": 1, "log": []});
        let record: DropRecord = serde_json::from_value(old).expect("an old record");
        assert_eq!(record.maker, crate::funnel::DEFAULT_MAKER);
        let again = serde_json::to_value(&record).expect("written");
        assert_eq!(again["maker"], "default");
    }

    /// Found by the `drop_spec` fuzz target's round-trip check: a start that is valid RFC
    /// 3339 but in the year 10000 in UTC was accepted, then written back as a bare number
    /// that no longer parsed (a journaled drop that a restart could not read).
    #[test]
    fn starts_at_is_written_back_as_it_reads() {
        let last = StartsAt::parse("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(last.ms(), StartsAt::MAX_MS);
        assert_eq!(last.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(StartsAt::parse(&last.to_rfc3339()), Ok(last));
        for late in ["9999-12-31T23:59:59-01:00", "9999-12-31T23:30:00-00:31"] {
            let err = StartsAt::parse(late).unwrap_err().to_string();
            assert!(err.contains("year 10000"), "{late}: {err}");
        }
        let t = StartsAt::parse("2026-12-24T18:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-24T17:00:00Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<StartsAt>(&json).unwrap(), t);
    }
}
