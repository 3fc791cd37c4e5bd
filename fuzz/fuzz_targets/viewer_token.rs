//! The hub's tokens: viewer tokens (`dw1.…`), host HS256 JWTs, admin tokens and the
//! `Authorization` header, on any input. Nothing panics, nothing forged verifies, and what
//! the hub mints (and what a host signs with the shared secret) verifies as who it names.
//!
//! Input, read by `Unstructured`: a clock, a string presented as a bearer token, a
//! viewer id and handle minted into a token, and a JWT header and claims (raw JSON, as a
//! host could write them) signed here with the JWT secret.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dropwire_server::auth::{Keys, VIEWER_TOKEN_TTL_S, Viewer, bearer, clean_handle};
use hmac::{Hmac, Mac};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const ADMIN: &str = "fuzz-admin-token-0123456789";
const JWT_SECRET: &str = "0123456789abcdef0123456789abcdef";
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN: usize = 4096;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::new(ADMIN.into(), Some(JWT_SECRET)))
}

/// Another hub: a different admin token, no JWT secret.
fn other() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::new("another-admin-token-xyz".into(), None))
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let now: u64 = if u.ratio(1, 4)? {
        u.arbitrary()?
    } else {
        u.int_in_range(0..=4_000_000_000)?
    };
    presented(u.arbitrary()?, now);
    minted(u.arbitrary()?, u.arbitrary()?, now);
    let header: &str = u.arbitrary()?;
    let claims: &str = u.arbitrary()?;
    signed_jwt(header, claims, now);
    Ok(())
}

/// Whatever a client presents: never a panic, never a viewer for a forgery.
fn presented(token: &str, now: u64) {
    let found = keys().verify(token, now);
    if let Some(v) = &found {
        assert!(!v.id.is_empty() && v.id.len() <= 128);
        assert!(!v.handle.is_empty());
    }
    // A made-up `dw1.` token carries no valid signature: no viewer.
    if token.starts_with("dw1.") {
        assert_eq!(found, None, "a forged viewer token verified: {token:?}");
    }
    assert_eq!(other().verify(token, now), None);
    assert!(!keys().is_admin(token) || token == ADMIN);
    let _ = clean_handle(token);
    if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        let _ = bearer(&headers);
    }
    if let Ok(value) = http::HeaderValue::from_bytes(token.as_bytes()) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        let _ = bearer(&headers);
    }
}

/// What the hub mints verifies as the viewer it names, until it expires, on this hub only.
fn minted(id: &str, handle: &str, now: u64) {
    let token = keys().mint(id, handle, now).expect("our claims always serialize");
    let found = keys().verify(&token, now);
    let expected =
        (token.len() <= MAX_TOKEN && !id.is_empty() && id.len() <= 128).then(|| Viewer {
            id: id.to_owned(),
            handle: clean_handle(handle).unwrap_or_else(|| "viewer".into()),
        });
    assert_eq!(
        found, expected,
        "minted {id:?} / {handle:?} at {now}: {token}"
    );
    if let Some(after) = now.checked_add(VIEWER_TOKEN_TTL_S + 1) {
        assert_eq!(
            keys().verify(&token, after),
            None,
            "an expired token verified"
        );
    }
    assert_eq!(
        other().verify(&token, now),
        None,
        "another hub's token verified"
    );
    // One character of the payload changed: the signature no longer matches.
    let at = 4;
    if let Some(c) = token[at..].chars().next() {
        let swap = if c == 'A' { "B" } else { "A" };
        let mut forged = token.clone();
        forged.replace_range(at..at + c.len_utf8(), swap);
        assert_eq!(
            keys().verify(&forged, now),
            None,
            "a changed token verified"
        );
    }
}

/// A JWT as a host could sign it: any header and claims, with the shared secret.
fn signed_jwt(header: &str, claims: &str, now: u64) {
    let signing_input = format!(
        "{}.{}",
        B64.encode(header.as_bytes()),
        B64.encode(claims.as_bytes())
    );
    let mut mac =
        Hmac::<Sha256>::new_from_slice(JWT_SECRET.as_bytes()).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    );
    let found = keys().verify(&token, now);
    if let Some(v) = &found {
        assert!(!v.id.is_empty() && v.id.len() <= 128);
    }
    assert_eq!(other().verify(&token, now), None, "no JWT secret there");

    // And a well-formed one, valid for an hour of wall time from `now` at the earliest.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = now.max(wall).saturating_add(3600);
    let sub: String = claims.chars().take(200).collect();
    let name: String = header.chars().take(64).collect();
    let body = serde_json::json!({"sub": sub, "name": name, "exp": exp});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &body,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("an HS256 JWT encodes");
    let expected =
        (jwt.len() <= MAX_TOKEN && !sub.is_empty() && sub.len() <= 128).then(|| Viewer {
            id: sub.clone(),
            handle: clean_handle(&name).unwrap_or_else(|| "viewer".into()),
        });
    assert_eq!(keys().verify(&jwt, now), expected, "a host's JWT: {jwt}");
}
