//! The server's errors: [`AppError`], what a request can fail with, and its one mapping to
//! HTTP responses; [`ConfigError`], what reading the configuration can fail with (a
//! start-up error: the binary exits with its message, it is never an HTTP answer).

use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dropwire_core::CoreError;
use dropwire_funnel::FunnelError;
use dropwire_store::StoreError;
use serde::Serialize;

/// Start-up errors from reading the configuration, named after the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("invalid {name}: {message}")]
    InvalidEnv { name: &'static str, message: String },
    #[error("{}", crate::config::unknown_env_message(.0))]
    UnknownEnv(Vec<crate::config::UnknownVar>),
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
}

/// What a request can fail with; each becomes API.md's error shape.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    #[error("missing admin token: send Authorization: Bearer <admin token>")]
    Unauthorized,
    #[error(
        "missing viewer token: send Authorization: Bearer <viewer token> (POST /api/v1/viewers mints one)"
    )]
    NoViewer,
    #[error("the viewer token is forged, expired or from another hub")]
    BadToken,
    #[error("drop {0} is closed")]
    DropClosed(String),
    #[error("{0}")]
    NotOnWaitlist(String),
    #[error("this hub runs without a funnel ledger (--ledger off)")]
    LedgerOff,
    #[error("url: {0}")]
    UrlRefused(String),
    #[error("{0}")]
    NoSuchEndpoint(String),
    #[error("{0}")]
    NoSuchCoupon(String),
    #[error("{0}")]
    NoSuchRecipe(String),
    #[error("{0}")]
    RecipeExists(String),
    #[error("{0}")]
    PassRuleExists(String),
    #[error("{0}")]
    NoSuchCoop(String),
    #[error("{0}")]
    CoopExists(String),
    #[error("{0}")]
    CouponRedeemed(String),
    #[error("{0}")]
    CouponExpired(String),
    #[error("{total} lines of the import are not facts; nothing was imported")]
    ImportRejected {
        total: usize,
        errors: Vec<(usize, String)>,
    },
    #[error("wrong admin token")]
    Forbidden,
    #[error("only the operator (an admin token) may do this")]
    OperatorOnly,
    #[error("the maker token is unknown or revoked")]
    BadMakerToken,
    #[error("no maker with id {0}")]
    NoSuchMaker(String),
    #[error("a maker with id {0} exists")]
    MakerExists(String),
    #[error("pages from {0} may not open viewer connections here (--allowed-origins)")]
    ForbiddenOrigin(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("too many viewers are joining at this moment; retry in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    /// One of our own values could not be written as JSON (never happens: a bug).
    #[error("cannot write {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Domain(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Funnel(#[from] FunnelError),
}

/// The body of every HTTP error (`docs/api.md`, "Errors").
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: one of the codes of `docs/api.md`, "Errors".
    #[schema(example = "not_found")]
    pub code: String,
    /// What went wrong and how to fix it, for a person.
    pub message: String,
    /// The JSON path (or query parameter) of the offending input, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "script.cues[2].sku")]
    pub field: Option<String>,
    /// `bad_lines` (a ledger import): the lines that are not facts, the first 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub lines: Option<Vec<BadLine>>,
}

/// One refused line of a ledger import.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BadLine {
    /// 1-based (0: the body as a whole, e.g. not UTF-8).
    pub line: usize,
    pub message: String,
}

impl AppError {
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
            field,
        }
    }

    /// The HTTP status and the stable `code` of each error: the one place they are decided.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            AppError::Unauthorized | AppError::NoViewer => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            AppError::BadToken | AppError::BadMakerToken => (StatusCode::UNAUTHORIZED, "bad_token"),
            AppError::DropClosed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "drop_closed"),
            AppError::NotOnWaitlist(_) => (StatusCode::NOT_FOUND, "not_on_waitlist"),
            AppError::LedgerOff => (StatusCode::SERVICE_UNAVAILABLE, "ledger_off"),
            AppError::UrlRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "url_refused"),
            AppError::NoSuchEndpoint(_) => (StatusCode::NOT_FOUND, "no_such_endpoint"),
            AppError::NoSuchCoupon(_) => (StatusCode::NOT_FOUND, "no_such_coupon"),
            AppError::NoSuchRecipe(_) => (StatusCode::NOT_FOUND, "no_such_recipe"),
            AppError::RecipeExists(_) => (StatusCode::CONFLICT, "already_exists"),
            AppError::PassRuleExists(_) => (StatusCode::CONFLICT, "already_exists"),
            AppError::NoSuchCoop(_) => (StatusCode::NOT_FOUND, "no_such_coop"),
            AppError::CoopExists(_) => (StatusCode::CONFLICT, "already_exists"),
            AppError::CouponRedeemed(_) => (StatusCode::CONFLICT, "coupon_redeemed"),
            AppError::CouponExpired(_) => (StatusCode::CONFLICT, "coupon_expired"),
            AppError::ImportRejected { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "bad_lines"),
            AppError::Funnel(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AppError::Funnel(_) | AppError::Encode { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            AppError::Forbidden | AppError::OperatorOnly => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NoSuchMaker(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::MakerExists(_) => (StatusCode::CONFLICT, "already_exists"),
            AppError::ForbiddenOrigin(_) => (StatusCode::FORBIDDEN, "forbidden_origin"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            AppError::Domain(CoreError::Invalid { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            AppError::Domain(CoreError::NoSuchCue { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "no_such_cue")
            }
            AppError::Domain(CoreError::WrongState { .. }) => (StatusCode::CONFLICT, "wrong_state"),
            AppError::Domain(CoreError::AlreadyFired { .. }) => {
                (StatusCode::CONFLICT, "already_fired")
            }
            AppError::Store(e) => store_status_and_code(e),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            AppError::BadRequest { field, .. } => field.clone(),
            AppError::Domain(CoreError::Invalid { field, .. }) => Some(field.clone()),
            AppError::UrlRefused(_) => Some("url".into()),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            AppError::Domain(CoreError::Invalid { field, message }) => {
                format!("{field}: {message}")
            }
            AppError::Store(StoreError::NotHeld { code, state, .. }) => {
                format!("claim {code} is {}, not held", state.as_str())
            }
            other => other.to_string(),
        }
    }
}

/// [`AppError::status_and_code`] of a store error (a batch's shared failure: its own).
fn store_status_and_code(e: &StoreError) -> (StatusCode, &'static str) {
    match e {
        StoreError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists"),
        StoreError::NoSuchDrop(_) => (StatusCode::NOT_FOUND, "no_such_drop"),
        StoreError::NoSuchClaim(_) => (StatusCode::NOT_FOUND, "no_such_claim"),
        StoreError::NotHeld { .. } => (StatusCode::CONFLICT, "not_held"),
        StoreError::Conflict => (StatusCode::CONFLICT, "conflict"),
        StoreError::Io(_)
        | StoreError::Corrupt { .. }
        | StoreError::JournalVersion { .. }
        | StoreError::JournalFailed(_)
        | StoreError::RecordTooLarge { .. }
        | StoreError::Stopped(_)
        | StoreError::Encode { .. }
        | StoreError::NoDataDir
        | StoreError::Inconsistent(_)
        | StoreError::Random(_)
        | StoreError::CodesTaken(_)
        | StoreError::Busy
        | StoreError::Timeout(_)
        | StoreError::BadReply { .. }
        | StoreError::TooFewReplicas { .. }
        | StoreError::Redis(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        StoreError::Batch(e) => store_status_and_code(e),
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let lines = match &self {
            AppError::ImportRejected { errors, .. } => Some(
                errors
                    .iter()
                    .map(|(line, message)| BadLine {
                        line: *line,
                        message: message.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.message(),
                field: self.field(),
                lines,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let AppError::RateLimited { retry_after_s } | AppError::Busy { retry_after_s } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_s.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use dropwire_core::DropId;

    use super::*;

    #[test]
    fn a_claim_batch_failure_answers_as_its_cause_and_says_what_it_was() {
        let timeout = Arc::new(StoreError::Timeout(Duration::from_millis(500)));
        let e = AppError::Store(StoreError::Batch(timeout));
        assert_eq!(
            e.status_and_code(),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(e.message(), "redis did not answer within 500ms");
        let missing = DropId::parse("gone").unwrap();
        let e = AppError::Store(StoreError::Batch(Arc::new(StoreError::NoSuchDrop(missing))));
        assert_eq!(e.status_and_code(), (StatusCode::NOT_FOUND, "no_such_drop"));
    }
}
