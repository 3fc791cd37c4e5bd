//! The waitlist: before a drop, a viewer joins in one click with what it intends to buy
//! (a size, the items it wants) and whether the maker may contact it.
//!
//! Rules, checked by [`WaitlistJoin::validate`] against the drop:
//! - `intent.size`, if given, is one of the variants of the drop's inventory (of the items
//!   named in `intent.items` when there are any);
//! - `intent.items` names SKUs of the drop, each once, at most [`MAX_ITEMS`];
//! - `intent.note` is at most [`MAX_NOTE`] characters;
//! - `contact` is an e-mail address of at most 254 characters, and is kept only with
//!   `consent.marketing` (a contact without that consent is refused, not silently dropped).

use serde::{Deserialize, Serialize};

use crate::drop::DropSpec;
use crate::error::CoreError;

pub const MAX_ITEMS: usize = 20;
pub const MAX_NOTE: usize = 500;
const MAX_CONTACT: usize = 254;

/// What a viewer intends to buy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Intent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a viewer agrees to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The maker may contact the viewer about this and later drops.
    #[serde(default)]
    pub marketing: bool,
}

/// The body of `POST /api/v1/drops/{id}/waitlist`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WaitlistJoin {
    #[serde(default)]
    pub intent: Intent,
    #[serde(default)]
    pub consent: Consent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

impl WaitlistJoin {
    /// Checks the join against the drop's inventory (see the module doc).
    pub fn validate(&self, spec: &DropSpec) -> Result<(), CoreError> {
        let intent = &self.intent;
        if intent.items.len() > MAX_ITEMS {
            return Err(CoreError::invalid(
                "intent.items",
                format!("at most {MAX_ITEMS} items"),
            ));
        }
        for (i, sku) in intent.items.iter().enumerate() {
            if spec.item(sku).is_none() {
                return Err(CoreError::invalid(
                    format!("intent.items[{i}]"),
                    format!("the drop has no item {:?}", truncate(sku)),
                ));
            }
            if intent.items[..i].contains(sku) {
                return Err(CoreError::invalid(
                    format!("intent.items[{i}]"),
                    format!("{sku:?} is listed twice"),
                ));
            }
        }
        if let Some(size) = &intent.size {
            let chosen = |sku: &String| intent.items.is_empty() || intent.items.contains(sku);
            let offered: Vec<&str> = spec
                .inventory
                .iter()
                .filter(|item| chosen(&item.sku))
                .flat_map(|item| item.variants.iter().map(String::as_str))
                .collect();
            if !offered.contains(&size.as_str()) {
                let message = if offered.is_empty() {
                    "the drop's items come in one size: leave size out".to_owned()
                } else {
                    format!(
                        "{:?} is not offered; choose one of {}",
                        truncate(size),
                        offered.join(", ")
                    )
                };
                return Err(CoreError::invalid("intent.size", message));
            }
        }
        if let Some(note) = &intent.note
            && note.chars().count() > MAX_NOTE
        {
            return Err(CoreError::invalid(
                "intent.note",
                format!("at most {MAX_NOTE} characters"),
            ));
        }
        if let Some(contact) = &self.contact {
            if !self.consent.marketing {
                return Err(CoreError::invalid(
                    "contact",
                    "a contact is kept only with consent.marketing = true; leave it out or give consent",
                ));
            }
            if !looks_like_email(contact) {
                return Err(CoreError::invalid(
                    "contact",
                    format!("an e-mail address of at most {MAX_CONTACT} characters"),
                ));
            }
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `local@domain.tld`, no spaces, at most 254 characters: enough to catch typos, no more.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= MAX_CONTACT
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drop::InventoryItem;
    use crate::script::{Cue, CueType, Script};

    fn spec() -> DropSpec {
        let item = |sku: &str, variants: &[&str]| InventoryItem {
            sku: sku.into(),
            name: sku.into(),
            price_cents: 1000,
            stock: 5,
            per_viewer_limit: 1,
            image_url: None,
            fair_start_ms: 0,
            variants: variants.iter().map(|v| (*v).to_owned()).collect(),
        };
        DropSpec {
            id: None,
            title: "t".into(),
            kind: Default::default(),
            currency: "EUR".into(),
            hold_s: 60,
            inventory: vec![item("tee", &["S", "M"]), item("mug", &[])],
            script: Script {
                duration_s: 60,
                cues: vec![Cue::new(60, CueType::Close)],
            },
            starts_at: None,
            auto_start: false,
            early_access_s: 0,
            follow_up: None,
            nurture: None,
        }
    }

    fn join(size: Option<&str>, items: &[&str]) -> WaitlistJoin {
        WaitlistJoin {
            intent: Intent {
                size: size.map(str::to_owned),
                items: items.iter().map(|s| (*s).to_owned()).collect(),
                note: None,
            },
            ..Default::default()
        }
    }

    fn field(r: Result<(), CoreError>) -> String {
        match r {
            Err(CoreError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn sizes_come_from_the_chosen_items() {
        let s = spec();
        assert_eq!(join(Some("M"), &["tee"]).validate(&s), Ok(()));
        assert_eq!(join(Some("S"), &[]).validate(&s), Ok(()));
        assert_eq!(
            field(join(Some("XL"), &["tee"]).validate(&s)),
            "intent.size"
        );
        assert_eq!(field(join(Some("M"), &["mug"]).validate(&s)), "intent.size");
        assert_eq!(field(join(None, &["cup"]).validate(&s)), "intent.items[0]");
        assert_eq!(
            field(join(None, &["mug", "mug"]).validate(&s)),
            "intent.items[1]"
        );
    }

    #[test]
    fn a_contact_needs_consent_and_a_plausible_address() {
        let s = spec();
        let mut j = join(None, &[]);
        j.contact = Some("ana@example.com".into());
        assert_eq!(field(j.validate(&s)), "contact");
        j.consent.marketing = true;
        assert_eq!(j.validate(&s), Ok(()));
        for bad in ["ana", "ana@", "@x.y", "a b@x.y", "ana@localhost"] {
            j.contact = Some(bad.into());
            assert_eq!(field(j.validate(&s)), "contact", "{bad}");
        }
        j.contact = Some(format!("{}@x.io", "a".repeat(260)));
        assert_eq!(field(j.validate(&s)), "contact");
    }
}
