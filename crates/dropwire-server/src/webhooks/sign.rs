//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, keyed by the base64 part of a `whsec_`
//! secret; during a rotation the header carries one signature per secret, space separated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A fresh signing secret: `whsec_` and 24 random bytes in base64.
pub fn new_secret() -> Result<String, dropwire_store::StoreError> {
    Ok(format!(
        "{PREFIX}{}",
        B64.encode(dropwire_store::random_bytes::<24>()?)
    ))
}

/// `v1,<signature>` of one message under one secret (`None` for a malformed secret).
pub fn sign(secret: &str, msg_id: &str, timestamp_s: u64, body: &str) -> Option<String> {
    let key = B64.decode(secret.strip_prefix(PREFIX)?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp_s}.").as_bytes());
    mac.update(body.as_bytes());
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header for every secret in `secrets`.
pub fn header(secrets: &[&str], msg_id: &str, timestamp_s: u64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, msg_id, timestamp_s, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_signature() {
        // The example of the Standard Webhooks specification.
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(sign("no-prefix", "m", 1, "{}"), None);
        let both = header(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAA"],
            "m",
            1,
            "{}",
        );
        assert_eq!(both.split(' ').count(), 2);
    }
}
