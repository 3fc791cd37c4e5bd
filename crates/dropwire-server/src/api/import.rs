//! `POST /api/v1/ledger/import`: a maker's past orders and events from another shop, as
//! NDJSON facts with their original times; all lines or none, idempotent by fact id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use dropwire_core::{Fact, FactKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{AppError, ErrorBody};

/// The largest import body, and the most lines one may have.
pub const MAX_IMPORT: usize = 32 << 20;
const MAX_LINES: usize = 200_000;
/// Errors reported at most (the rest are counted).
const MAX_REPORTED: usize = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    lines: u64,
    recorded: u64,
    duplicates: u64,
}

/// What a line must be, beyond parsing as a fact.
fn check(fact: &Fact, maker: &str) -> Result<(), String> {
    let within = |s: &str, n: usize| !s.is_empty() && s.len() <= n;
    if !within(&fact.id, 200) {
        return Err("id must be 1-200 characters".into());
    }
    if matches!(
        fact.kind,
        FactKind::ViewerErased | FactKind::EndpointDisabled
    ) {
        return Err(format!("{} facts cannot be imported", fact.kind));
    }
    if fact.maker != maker {
        return Err(format!("maker must be {maker:?} (or left out)"));
    }
    if fact
        .drop_id
        .as_deref()
        .is_some_and(|d| dropwire_core::DropId::parse(d).is_err())
    {
        return Err("drop_id must be 1-64 of a-z, 0-9 and -".into());
    }
    if fact.viewer_id.as_deref().is_some_and(|v| !within(v, 128)) {
        return Err("viewer_id must be 1-128 characters".into());
    }
    if !fact.detail.is_object() && !fact.detail.is_null() {
        return Err("detail must be an object".into());
    }
    if fact.detail.to_string().len() > 8192 {
        return Err("detail is at most 8 KiB".into());
    }
    let needs = |what: &str| fact.detail[what].is_null();
    match fact.kind {
        FactKind::ClaimGranted | FactKind::ClaimRedeemed | FactKind::ClaimExpired
            if needs("code") =>
        {
            Err("a claim fact needs detail.code".into())
        }
        FactKind::ClaimRedeemed | FactKind::CouponRedeemed
            if fact.detail["amount_cents"].as_u64().is_none() =>
        {
            Err("a redemption needs detail.amount_cents (a whole number ≥ 0)".into())
        }
        FactKind::DropScheduled
            if !fact.detail["kind"].is_null()
                && !matches!(
                    fact.detail["kind"].as_str(),
                    Some("drop" | "workshop" | "demo")
                ) =>
        {
            Err("detail.kind is drop, workshop or demo".into())
        }
        _ if fact.drop_id.is_none() => Err("drop_id is required".into()),
        _ => Ok(()),
    }
}

/// Parses every line; the facts, or every line's error (by 1-based line number).
#[cfg(test)]
pub fn parse(body: &[u8]) -> Result<Vec<Fact>, Vec<(usize, String)>> {
    parse_as(body, dropwire_core::funnel::DEFAULT_MAKER)
}

/// [`parse`] for an import by `maker`: its facts are that maker's (another maker's
/// refused).
pub fn parse_as(body: &[u8], maker: &str) -> Result<Vec<Fact>, Vec<(usize, String)>> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return Err(vec![(0, format!("the body is not UTF-8: {e}"))]),
    };
    let mut facts = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if facts.len() + errors.len() >= MAX_LINES {
            errors.push((i + 1, format!("at most {MAX_LINES} lines per import")));
            break;
        }
        let mut value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                errors.push((i + 1, format!("not JSON: {e}")));
                continue;
            }
        };
        // Only an object gets the default maker: indexing another JSON value by a key panics
        // (found by Schemathesis: a line `[null, null]` ended the connection without an
        // answer); it then fails to read as a fact below, like any other line that is not one.
        if let Some(fact) = value.as_object_mut() {
            fact.entry("maker").or_insert_with(|| maker.into());
        }
        match serde_json::from_value::<Fact>(value) {
            Ok(fact) => match check(&fact, maker) {
                Ok(()) => facts.push(fact),
                Err(e) => errors.push((i + 1, e)),
            },
            Err(e) => errors.push((i + 1, e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(facts)
    } else {
        Err(errors)
    }
}

/// `POST /api/v1/ledger/import` (admin)
#[utoipa::path(
    post,
    path = "/api/v1/ledger/import",
    tag = "ledger",
    operation_id = "import_facts",
    summary = "Import a history from another shop: NDJSON facts with their times; all lines or none, idempotent by fact id",
    description = "One fact per line: `{id, kind, drop_id, viewer_id?, at_ms, detail?, maker?}`, at most \
        200,000 lines and 32 MiB. Claim facts need `detail.code`, redemptions `detail.amount_cents`; \
        `viewer.erased` and `endpoint.disabled` cannot be imported. An imported history builds the \
        KPIs but announces nothing (no webhooks, coupons or nurture for the past).",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "NDJSON: one JSON fact per line (the content type is not checked)"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "How many lines, how many new facts, how many already there", body = Imported),
        (status = 400, description = "`bad_request`: no facts in the body; `bad_body`: the body could not be read", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 32 MiB", body = ErrorBody),
        (status = 422, description = "`bad_lines`: lines that are not facts; `error.lines` names them (1-based, the first 100) and nothing was imported", body = ErrorBody),
        (status = 503, description = "`ledger_off`: the hub runs without a ledger; `unavailable`: the ledger cannot be reached", body = ErrorBody),
    )
)]
pub async fn import(
    caller: Caller,
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Imported>, AppError> {
    // Read here rather than as a `Bytes` argument, whose refusals are plain text: a body
    // over the limit is the API's 413 `too_large`.
    let body = Bytes::from_request(request, &state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge { limit: MAX_IMPORT }
        } else {
            AppError::bad_request("bad_body", e.body_text(), None)
        }
    })?;
    let ledger = state.ledger()?;
    let facts = parse_as(&body, caller.maker()).map_err(|mut errors| {
        let total = errors.len();
        errors.truncate(MAX_REPORTED);
        AppError::ImportRejected { total, errors }
    })?;
    if facts.is_empty() {
        return Err(AppError::bad_request(
            "bad_request",
            "no facts: send one JSON fact per line",
            None,
        ));
    }
    let recorded = ledger.import(&facts).await?;
    tracing::info!(lines = facts.len(), recorded, "ledger import");
    Ok(Json(Imported {
        lines: facts.len() as u64,
        recorded,
        duplicates: facts.len() as u64 - recorded,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_reported_by_number() {
        let body = concat!(
            r#"{"id": "a", "kind": "viewer.attended", "drop_id": "d1", "viewer_id": "v", "at_ms": 1}"#,
            "\n",
            "\n",
            "nope\n",
            r#"{"id": "b", "kind": "claim.redeemed", "drop_id": "d1", "viewer_id": "v", "at_ms": 2, "detail": {"code": "X"}}"#,
            "\n",
            r#"{"id": "c", "kind": "claim.stolen", "drop_id": "d1", "at_ms": 2}"#,
            "\n",
            "[null, null]\n",
            "7\n",
        );
        let errors = parse(body.as_bytes()).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert!(errors[1].1.contains("amount_cents"), "{errors:?}");
        let ok = parse(br#"{"id": "a", "kind": "viewer.attended", "drop_id": "d1", "viewer_id": "v", "at_ms": 1}"#).unwrap();
        assert_eq!(ok[0].maker, dropwire_core::funnel::DEFAULT_MAKER);
    }
}
