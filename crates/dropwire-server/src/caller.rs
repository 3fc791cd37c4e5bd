//! Who is asking an admin route: the operator or a maker (a tenant).
//!
//! - The **operator** presents one of the hub's admin tokens ([`crate::auth::Keys`]). It
//!   sees and acts on every maker's drops, acts as the maker `default` where a route needs
//!   one maker (recipes, webhooks, KPIs…), and may act as another maker with the header
//!   `X-Dropwire-Maker: <id>` (then it is scoped like that maker, and keeps the
//!   operator-only routes).
//! - A **maker** presents one of its tokens (`dwm_…`, minted by `POST /api/v1/makers`),
//!   checked by its SHA-256 against the ledger. It sees and acts on its own drops and data
//!   only: another maker's drop answers 404 like a missing one, an operator-only route 403.
//!
//! Token look-ups are cached for [`TOKEN_TTL`]; a revocation through this node forgets its
//! entry at once, one through another node takes effect here within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dropwire_core::funnel::DEFAULT_MAKER;
use dropwire_funnel::TokenOwner;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::bearer;
use crate::error::AppError;
use crate::hub::DropHub;
use crate::sync::lock;

/// The header with which the operator acts as another maker.
pub const MAKER_HEADER: &str = "x-dropwire-maker";
/// Every maker token starts with this.
pub const TOKEN_PREFIX: &str = "dwm_";
/// How long a token look-up is reused.
pub const TOKEN_TTL: Duration = Duration::from_secs(2);
/// Look-ups cached at most (the cache is emptied when full).
const CACHE_MAX: usize = 10_000;

/// The caller of an admin route (an extractor: 401 without a token, 401 `bad_token` with
/// an unknown or revoked maker token, 403 with a wrong admin token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    maker: String,
    operator: bool,
    /// The operator without `X-Dropwire-Maker`: every maker's drops.
    all: bool,
}

impl Caller {
    /// The operator as the default maker (for `--demo` and the shipped recipes).
    pub fn operator() -> Caller {
        Caller {
            maker: DEFAULT_MAKER.into(),
            operator: true,
            all: true,
        }
    }

    /// The maker the request acts as (what it creates belongs to it).
    pub fn maker(&self) -> &str {
        &self.maker
    }

    pub fn is_operator(&self) -> bool {
        self.operator
    }

    /// Whether the caller may see and act on what belongs to `maker`.
    pub fn sees(&self, maker: &str) -> bool {
        self.all || self.maker == maker
    }

    /// Whether the caller sees every maker's drops (the operator without the header).
    pub fn sees_all(&self) -> bool {
        self.all
    }

    /// 403 unless the caller is the operator.
    pub fn operator_only(&self) -> Result<(), AppError> {
        if self.operator {
            Ok(())
        } else {
            Err(AppError::OperatorOnly)
        }
    }

    /// The drop named by a path segment, if the caller may see it (another maker's drop
    /// answers exactly like a missing one).
    pub async fn hub(&self, state: &AppState, id: &str) -> Result<Arc<DropHub>, AppError> {
        let hub = state.hub_by_path(id).await?;
        if self.sees(&hub.record().maker) {
            Ok(hub)
        } else {
            Err(AppError::NotFound(format!("no drop with id {}", hub.id)))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or(AppError::Unauthorized)?;
        let acting_as = match parts.headers.get(MAKER_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        AppError::bad_request(
                            "bad_request",
                            "X-Dropwire-Maker must name a maker",
                            Some(MAKER_HEADER.into()),
                        )
                    })?
                    .to_owned(),
            ),
        };
        if state.keys.is_admin(token) {
            let Some(maker) = acting_as else {
                return Ok(Caller::operator());
            };
            if maker != DEFAULT_MAKER && state.ledger()?.maker(&maker).await?.is_none() {
                return Err(AppError::NoSuchMaker(maker));
            }
            return Ok(Caller {
                maker,
                operator: true,
                all: false,
            });
        }
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(AppError::Forbidden);
        }
        let owner = maker_of(state, token)
            .await?
            .ok_or(AppError::BadMakerToken)?;
        if acting_as.is_some_and(|m| m != owner.maker) {
            return Err(AppError::OperatorOnly);
        }
        Ok(Caller {
            maker: owner.maker,
            operator: false,
            all: false,
        })
    }
}

/// Whether `token` may administer a drop of `maker` (the control panel's WebSocket login):
/// an admin token, or a valid token of that maker.
pub async fn may_administer(state: &AppState, token: &str, maker: &str) -> bool {
    if state.keys.is_admin(token) {
        return true;
    }
    token.starts_with(TOKEN_PREFIX)
        && matches!(maker_of(state, token).await, Ok(Some(owner)) if owner.maker == maker)
}

/// The SHA-256 of a token's text, in hex: all the ledger keeps of it.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new maker token: `dwm_` and 32 random bytes (base64url).
pub fn new_token() -> Result<String, AppError> {
    let bytes = dropwire_store::random_bytes::<32>()?;
    Ok(format!("{TOKEN_PREFIX}{}", B64.encode(bytes)))
}

/// Recent token look-ups by hash (`None`: no valid token has that hash).
#[derive(Debug, Default)]
pub struct TokenCache(Mutex<HashMap<String, (Option<TokenOwner>, Instant)>>);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Option<TokenOwner>> {
        let cache = lock(&self.0);
        let (owner, at) = cache.get(hash)?;
        (at.elapsed() < TOKEN_TTL).then(|| owner.clone())
    }

    fn put(&self, hash: String, owner: Option<TokenOwner>) {
        let mut cache = lock(&self.0);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (owner, Instant::now()));
    }

    /// Forgets the look-ups of a token (it was just revoked).
    pub fn forget(&self, token_id: &str) {
        lock(&self.0).retain(|_, (owner, _)| owner.as_ref().is_none_or(|o| o.token_id != token_id));
    }
}

async fn maker_of(state: &AppState, token: &str) -> Result<Option<TokenOwner>, AppError> {
    if token.len() > 256 {
        return Ok(None);
    }
    let hash = token_hash(token);
    if let Some(found) = state.maker_tokens.get(&hash) {
        return Ok(found);
    }
    let found = state.ledger()?.token_owner(&hash).await?;
    state.maker_tokens.put(hash, found.clone());
    Ok(found)
}
