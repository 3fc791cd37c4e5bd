//! Portable passes: each pass is also a JWS signed with the hub's Ed25519 key (EdDSA), that
//! any site can verify against the public key at `GET /.well-known/jwks.json`; dropwire
//! itself also honours revocation (`POST /api/v1/passes/verify`). What a pass grants in a
//! drop is [`crate::pass_grants`].
//!
//! The key is a 32-byte seed generated once and kept in the ledger (`signing_keys`,
//! purpose `passes`), so every node sharing a ledger signs with the same key; each node
//! reads it once ([`AppState::pass_key`](crate::app::AppInner::pass_key)).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dropwire_funnel::Pass;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::AppError;

/// The ledger's `signing_keys` purpose of the pass key.
const PURPOSE: &str = "passes";
/// PKCS#8 v1 DER of an Ed25519 private key, before its 32-byte seed (RFC 8410).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// The longest token `verify` reads.
pub const MAX_TOKEN: usize = 4096;

/// The hub's pass-signing key.
pub struct PassKey {
    pub kid: String,
    /// The public key, base64url (the JWK's `x`).
    pub x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for PassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassKey").field("kid", &self.kid).finish()
    }
}

impl PassKey {
    fn from_seed(kid: String, seed: [u8; 32]) -> Result<PassKey, AppError> {
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let x = B64.encode(public);
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let decoding = DecodingKey::from_ed_components(&x).map_err(corrupt)?;
        Ok(PassKey {
            kid,
            x,
            encoding: EncodingKey::from_ed_der(&der),
            decoding,
        })
    }

    /// The public key as a JWK (OKP, Ed25519).
    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
               "kid": self.kid, "x": self.x})
    }
}

fn corrupt(e: impl std::fmt::Display) -> AppError {
    AppError::Funnel(dropwire_funnel::FunnelError::Corrupt {
        what: "pass signing key".into(),
        message: e.to_string(),
    })
}

/// The hub's pass key: read from the ledger (stored there by the first node that needs it).
pub async fn pass_key(state: &AppState) -> Result<Arc<PassKey>, AppError> {
    let ledger = state.ledger()?;
    state
        .pass_key
        .get_or_try_init(|| async {
            let seed = dropwire_store::random_bytes::<32>()?;
            let kid = format!("dw-{}", ulid::Ulid::new().to_string().to_lowercase());
            let (kid, secret) = ledger
                .signing_secret(PURPOSE, (&kid, &B64.encode(seed)), state.clock.now_ms())
                .await?;
            let seed: [u8; 32] = B64
                .decode(secret)
                .map_err(corrupt)?
                .try_into()
                .map_err(|_| corrupt("not 32 bytes"))?;
            Ok(Arc::new(PassKey::from_seed(kid, seed)?))
        })
        .await
        .cloned()
}

/// What a pass token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassClaims {
    /// The hub: its `--public-url`, else `dropwire`.
    pub iss: String,
    /// The viewer holding the pass.
    pub sub: String,
    pub maker: String,
    /// The pass's id.
    pub pass: String,
    /// The rule that earned it.
    pub rule: String,
    /// When it was earned (Unix seconds).
    pub iat: u64,
}

/// The issuer the hub signs as.
pub fn issuer(state: &AppState) -> String {
    state
        .public_url
        .clone()
        .unwrap_or_else(|| "dropwire".into())
}

/// `pass` as a signed token.
pub fn sign(state: &AppState, key: &PassKey, pass: &Pass) -> Result<String, AppError> {
    let claims = PassClaims {
        iss: issuer(state),
        sub: pass.viewer_id.clone(),
        maker: pass.maker.clone(),
        pass: pass.id.clone(),
        rule: pass.rule.clone(),
        iat: pass.earned_ms / 1000,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(corrupt)
}

/// The claims of `token` if its signature is the hub's (revocation is the caller's).
pub fn check(key: &PassKey, token: &str) -> Option<PassClaims> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<PassClaims>(token, &key.decoding, &validation)
        .ok()
        .map(|d| d.claims)
}

/// `GET /.well-known/jwks.json`: the public key that verifies pass tokens.
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let key = pass_key(&state).await?;
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(json!({"keys": [key.jwk()]})),
    ))
}
