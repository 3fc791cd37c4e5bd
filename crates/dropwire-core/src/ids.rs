//! Identifiers: drop slugs and claim codes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// A drop's id: a slug of `[a-z0-9-]`, 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DropId(String);

impl DropId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(DropId(s.to_owned()))
        } else {
            Err(CoreError::invalid(
                "id",
                format!("{s:?} is not a drop id: use 1-64 characters of a-z, 0-9 and -"),
            ))
        }
    }

    /// Makes an id from a title and some entropy, e.g. `speckled-mugs-7k2f`.
    pub fn from_title(title: &str, suffix: &str) -> Self {
        let mut slug = String::new();
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
            if slug.len() >= 40 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        let suffix: String = suffix
            .chars()
            .flat_map(char::to_lowercase)
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let id = if slug.is_empty() {
            format!("drop-{suffix}")
        } else {
            format!("{slug}-{suffix}")
        };
        DropId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DropId {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DropId::parse(&s)
    }
}

impl From<DropId> for String {
    fn from(id: DropId) -> String {
        id.0
    }
}

impl fmt::Display for DropId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or typed is unambiguous.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A claim code: 80 random bits as 16 Crockford base32 characters, shown as `XXXX-XXXX-XXXX-XXXX`.
///
/// The caller supplies the randomness (a CSPRNG), so the core stays pure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClaimCode(String);

impl ClaimCode {
    pub const RANDOM_BYTES: usize = 10;

    pub fn from_random(bytes: [u8; Self::RANDOM_BYTES]) -> Self {
        let mut acc: u128 = 0;
        for b in bytes {
            acc = (acc << 8) | u128::from(b);
        }
        let mut out = String::with_capacity(19);
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            let shift = 75 - 5 * i;
            let idx = ((acc >> shift) & 31) as usize;
            out.push(char::from(ALPHABET[idx]));
        }
        ClaimCode(out)
    }

    /// Parses what a person typed: any case, with or without dashes or spaces, and the
    /// look-alikes `I`/`L` (as 1) and `O` (as 0).
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let mut chars = String::with_capacity(16);
        for c in s.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || chars.len() >= 16 {
                return Err(CoreError::invalid("code", "not a claim code"));
            }
            chars.push(c);
        }
        if chars.len() != 16 {
            return Err(CoreError::invalid("code", "a claim code has 16 characters"));
        }
        let mut out = String::with_capacity(19);
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        Ok(ClaimCode(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClaimCode {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ClaimCode::parse(&s)
    }
}

impl From<ClaimCode> for String {
    fn from(c: ClaimCode) -> String {
        c.0
    }
}

impl fmt::Display for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_ids() {
        assert!(DropId::parse("mugs-batch-12").is_ok());
        assert!(DropId::parse("").is_err());
        assert!(DropId::parse("Mugs").is_err());
        assert!(DropId::parse(&"a".repeat(65)).is_err());
        assert_eq!(
            DropId::from_title("Speckled mugs, batch 12!", "01AB").as_str(),
            "speckled-mugs-batch-12-01ab"
        );
        assert_eq!(DropId::from_title("★", "x1").as_str(), "drop-x1");
    }

    #[test]
    fn claim_codes_round_trip_and_forgive_typing() {
        let code = ClaimCode::from_random([0xff, 0, 1, 2, 3, 4, 5, 6, 7, 0x80]);
        assert_eq!(code.as_str().len(), 19);
        let typed = code.as_str().to_lowercase().replace('-', " ");
        assert_eq!(ClaimCode::parse(&typed).unwrap(), code);
        assert_eq!(
            ClaimCode::parse("oooo-iiii-llll-0000").unwrap().as_str(),
            "0000-1111-1111-0000"
        );
        assert!(ClaimCode::parse("UUUU-0000-0000-0000").is_err());
        assert!(ClaimCode::parse("0000").is_err());
        assert!(ClaimCode::parse(&"0".repeat(400)).is_err());
    }

    #[test]
    fn distinct_randomness_gives_distinct_codes() {
        let a = ClaimCode::from_random([1; 10]);
        let mut bytes = [1; 10];
        bytes[9] = 2;
        assert_ne!(a, ClaimCode::from_random(bytes));
    }
}
