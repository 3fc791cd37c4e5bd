//! Reading what Redis and the scripts answer: JSON values, script replies, claim states.
//! Anything unexpected is a [`StoreError::BadReply`], naming what was read.

use std::sync::Arc;

use dropwire_core::ClaimState;

use crate::StoreError;

pub(super) fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::BadReply {
        what: "a stored JSON value".into(),
        detail: e.to_string(),
        source: Some(Arc::new(e)),
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode {
        what: "a value for redis",
        source,
    })
}

pub(super) fn bad_reply(script: &str, reply: &[String]) -> StoreError {
    let shown: Vec<&str> = reply.iter().take(4).map(String::as_str).collect();
    StoreError::BadReply {
        what: script.to_owned(),
        detail: format!("{shown:?}"),
        source: None,
    }
}

pub(super) fn state(raw: &str) -> Result<ClaimState, StoreError> {
    Ok(match raw {
        "held" => ClaimState::Held,
        "redeemed" => ClaimState::Redeemed,
        "expired" => ClaimState::Expired,
        other => return Err(bad_reply("settle.lua state", &[other.to_owned()])),
    })
}
