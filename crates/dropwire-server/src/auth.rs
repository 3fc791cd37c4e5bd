//! Who is asking: the streamer's admin token, and viewer tokens.
//!
//! Viewer tokens are `dw1.<payload>.<signature>`: the payload is base64url JSON
//! `{"sub": viewer id, "name": handle, "exp": Unix seconds}`, the signature an HMAC-SHA256
//! under a key derived from the admin token (so every node that shares the admin token
//! accepts them). A host platform may instead sign an HS256 JWT with `--jwt-secret`.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::AppError;

type HmacSha256 = Hmac<Sha256>;

/// Viewer tokens minted here live this long.
pub const VIEWER_TOKEN_TTL_S: u64 = 30 * 24 * 3600;
const MAX_HANDLE: usize = 32;

/// A viewer proven by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub id: String,
    pub handle: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    exp: u64,
}

/// Signs and checks tokens.
pub struct Keys {
    /// Every admin token accepted (the first, and during a rotation the others).
    admin_tokens: Vec<String>,
    viewer_key: Vec<u8>,
    /// Derives each claim's follow-up coupon code (the same on every node, unguessable).
    followup_key: Vec<u8>,
    jwt: Option<jsonwebtoken::DecodingKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

impl Keys {
    pub fn new(admin_token: String, jwt_secret: Option<&str>) -> Self {
        Keys::with(vec![admin_token], None, jwt_secret)
    }

    /// Keys accepting every one of `admin_tokens` (at least one). Viewer tokens and
    /// follow-up coupon codes derive from `signing_secret`, or without one from the first
    /// admin token (so rotating admin tokens keeps them valid only with a signing secret).
    pub fn with(
        admin_tokens: Vec<String>,
        signing_secret: Option<&str>,
        jwt_secret: Option<&str>,
    ) -> Self {
        let first = admin_tokens.first().map(String::as_str).unwrap_or_default();
        let root = signing_secret.unwrap_or(first);
        let derive = |purpose: &[u8]| {
            let mut mac =
                HmacSha256::new_from_slice(root.as_bytes()).expect("HMAC takes any key length");
            mac.update(purpose);
            mac.finalize().into_bytes().to_vec()
        };
        let viewer_key = derive(b"dropwire viewer tokens v1");
        let followup_key = derive(b"dropwire follow-up coupons v1");
        Keys {
            admin_tokens,
            viewer_key,
            followup_key,
            jwt: jwt_secret.map(|s| jsonwebtoken::DecodingKey::from_secret(s.as_bytes())),
        }
    }

    /// Whether `presented` is one of the admin tokens (each compared in constant time).
    pub fn is_admin(&self, presented: &str) -> bool {
        let mut any = subtle::Choice::from(0);
        for token in &self.admin_tokens {
            any |= presented.as_bytes().ct_eq(token.as_bytes());
        }
        any.into()
    }

    /// The follow-up coupon code of a claim: derived from the claim's code, so every node
    /// and every reconciliation gives the same one, and nobody without the key can.
    pub(crate) fn followup_code(&self, claim: &dropwire_core::ClaimCode) -> String {
        let mut mac =
            HmacSha256::new_from_slice(&self.followup_key).expect("HMAC takes any key length");
        mac.update(claim.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; dropwire_core::ClaimCode::RANDOM_BYTES];
        bytes.copy_from_slice(&digest[..dropwire_core::ClaimCode::RANDOM_BYTES]);
        dropwire_core::ClaimCode::from_random(bytes).to_string()
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.viewer_key).expect("HMAC takes any key length")
    }

    /// A signed token for the viewer (an error only if the claims cannot be written, a bug).
    pub fn mint(
        &self,
        viewer_id: &str,
        handle: &str,
        now_s: u64,
    ) -> Result<String, serde_json::Error> {
        let claims = Claims {
            sub: viewer_id.into(),
            name: handle.into(),
            // Saturating: a clock far in the future must not panic the hub (found by fuzz/).
            exp: now_s.saturating_add(VIEWER_TOKEN_TTL_S),
        };
        let payload = B64.encode(crate::encode::to_json("a viewer token", &claims)?);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        Ok(format!(
            "dw1.{payload}.{}",
            B64.encode(mac.finalize().into_bytes())
        ))
    }

    /// The viewer a token proves, or `None` for a forged, expired or malformed one.
    pub fn verify(&self, token: &str, now_s: u64) -> Option<Viewer> {
        if token.len() > 4096 {
            return None;
        }
        let claims = if let Some(rest) = token.strip_prefix("dw1.") {
            let (payload, sig) = rest.split_once('.')?;
            let sig = B64.decode(sig).ok()?;
            let mut mac = self.mac();
            mac.update(payload.as_bytes());
            mac.verify_slice(&sig).ok()?;
            serde_json::from_slice::<Claims>(&B64.decode(payload).ok()?).ok()?
        } else {
            let key = self.jwt.as_ref()?;
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.set_required_spec_claims(&["exp", "sub"]);
            validation.leeway = 5;
            jsonwebtoken::decode::<Claims>(token, key, &validation)
                .ok()?
                .claims
        };
        if claims.exp < now_s || claims.sub.is_empty() || claims.sub.len() > 128 {
            return None;
        }
        Some(Viewer {
            id: claims.sub,
            handle: clean_handle(&claims.name).unwrap_or_else(|| "viewer".into()),
        })
    }
}

/// A handle as shown on the leaderboard: control characters dropped, then trimmed, 1-32
/// printable characters (so at least one that is not a space).
pub fn clean_handle(raw: &str) -> Option<String> {
    // Dropped before trimming: spaces between control characters are spaces at the ends
    // once those are gone (found by Schemathesis: a handle of spaces was accepted).
    let visible: String = raw.chars().filter(|c| !c.is_control()).collect();
    let h: String = visible.trim().chars().take(MAX_HANDLE).collect();
    (!h.is_empty()).then_some(h)
}

/// Extractor: the request carries the admin token (401 without one, 403 with a wrong one).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers) {
            None => Err(AppError::Unauthorized),
            Some(t) if state.keys.is_admin(t) => Ok(Admin),
            Some(_) => Err(AppError::Forbidden),
        }
    }
}

/// Extractor: the request carries a viewer token or host JWT (401 without one or with a
/// bad one).
#[derive(Debug, Clone)]
pub(crate) struct AuthViewer(pub Viewer);

impl FromRequestParts<AppState> for AuthViewer {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(AppError::NoViewer)?;
        state
            .keys
            .verify(token, state.clock.now_ms() / 1000)
            .map(AuthViewer)
            .ok_or(AppError::BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let keys = Keys::new(
            "admin-token-0123456789".into(),
            Some("0123456789abcdef0123456789abcdef"),
        );
        let t = keys.mint("v1", "ana", 1000).unwrap();
        assert_eq!(
            keys.verify(&t, 1000),
            Some(Viewer {
                id: "v1".into(),
                handle: "ana".into()
            })
        );
        assert_eq!(keys.verify(&t, 1001 + VIEWER_TOKEN_TTL_S), None, "expired");
        let other = Keys::new("another-admin-token-xyz".into(), None);
        assert_eq!(other.verify(&t, 1000), None, "signed by another hub");
        let mut forged = t.clone();
        forged.replace_range(5..6, if &t[5..6] == "A" { "B" } else { "A" });
        assert_eq!(keys.verify(&forged, 1000), None);
        assert_eq!(keys.verify("garbage", 1000), None);

        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Claims {
                sub: "shop-42".into(),
                name: "Bo".into(),
                exp: 4_000_000_000,
            },
            &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(
            keys.verify(&jwt, 1000).map(|v| v.id),
            Some("shop-42".into())
        );
        assert_eq!(other.verify(&jwt, 1000), None, "no jwt secret configured");
    }

    /// Found by `fuzz/` (viewer_token): minting at a clock near `u64::MAX` overflowed.
    #[test]
    fn a_token_minted_at_the_end_of_time_verifies() {
        let keys = Keys::new("admin-token-0123456789".into(), None);
        for now in [u64::MAX - VIEWER_TOKEN_TTL_S + 1, u64::MAX] {
            let t = keys.mint("v1", "ana", now).unwrap();
            assert_eq!(keys.verify(&t, now).map(|v| v.id), Some("v1".into()));
        }
    }

    #[test]
    fn handles_are_cleaned() {
        assert_eq!(clean_handle("  ana\n "), Some("ana".into()));
        assert_eq!(clean_handle("   "), None);
        assert_eq!(clean_handle("\u{1}\u{202f}\u{17}\r\u{2002} \u{97}"), None);
        assert_eq!(clean_handle("\u{1} ana\u{7} "), Some("ana".into()));
        assert_eq!(clean_handle(&"x".repeat(100)).map(|h| h.len()), Some(32));
    }
}
