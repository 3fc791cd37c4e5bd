//! Reading what Redis and the scripts answer: JSON values, script replies, claim states.
//! Anything unexpected is a [`StoreError::Redis`] of kind `TypeError`, naming what was read.

use dropwire_core::ClaimState;
use redis::{ErrorKind, RedisError};

use crate::StoreError;

pub(super) fn parse<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| {
        StoreError::Redis(RedisError::from((
            ErrorKind::TypeError,
            "unreadable JSON in redis",
            e.to_string(),
        )))
    })
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::Redis(RedisError::from((
            ErrorKind::TypeError,
            "a value cannot be written as JSON",
            e.to_string(),
        )))
    })
}

pub(super) fn bad_reply(script: &str, reply: &[String]) -> StoreError {
    let shown: Vec<&str> = reply.iter().take(4).map(String::as_str).collect();
    StoreError::Redis(RedisError::from((
        ErrorKind::TypeError,
        "unexpected reply from a dropwire script",
        format!("{script}: {shown:?}"),
    )))
}

pub(super) fn state(raw: &str) -> Result<ClaimState, StoreError> {
    Ok(match raw {
        "held" => ClaimState::Held,
        "redeemed" => ClaimState::Redeemed,
        "expired" => ClaimState::Expired,
        other => return Err(bad_reply("settle.lua state", &[other.to_owned()])),
    })
}
