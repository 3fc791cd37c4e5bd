//! The launch calendar: the upcoming drops (`GET /api/v1/calendar`, in [`crate::api`]),
//! their iCalendar feed (`GET /calendar.ics`, [`ics`]), and, with many hub nodes, the scan
//! that hands each node the scheduled drops other nodes made ([`scan`]).
//!
//! Which drops are listed, and when one starts by itself, are the pure rules of
//! [`dropwire_core::schedule`]; the start itself is the hub task's ([`crate::hub`]).
//!
//! The list is read from the drops that may still change ([`dropwire_store::Store::open_drops`]),
//! so it costs what the open drops cost, never every drop ever made; being public, it is
//! kept for [`CACHE_FOR`] so that a crowd of calendar apps costs one read per period (a drop
//! made on this node is listed at once).
//!
//! Each entry names its `maker` (the drop's); `?maker=<id>` keeps one maker's drops. A
//! co-op's shared calendar ([`coop`]) is this list filtered to its member makers, with
//! overlap warnings.

pub mod coop;
pub mod ics;
pub mod scan;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dropwire_core::schedule::on_calendar;
use dropwire_core::{DropKind, DropState, StartsAt, TimelineView};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::AppError;

/// How long the list is reused before the store is read again.
pub const CACHE_FOR: Duration = Duration::from_secs(2);

/// One drop on the launch calendar.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CalendarEntry {
    pub id: String,
    pub title: String,
    /// Whose drop it is (the maker's id; `default`: the operator's).
    pub maker: String,
    pub kind: DropKind,
    /// The announced start, RFC 3339 in UTC.
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: StartsAt,
    /// The same, in Unix milliseconds.
    pub starts_ms: u64,
    /// The script's length: the drop's slot is `starts_ms` plus this.
    pub duration_s: u32,
    /// `scheduled`, `live` or `paused` (closed drops are not listed).
    pub state: DropState,
    /// Whether the drop starts by itself at `starts_at`.
    pub auto_start: bool,
    /// The drop's page on this hub: its waitlist before the start, the live overlay during it.
    pub url: String,
    /// When the drop was made (the feed's `DTSTAMP`).
    #[serde(skip)]
    pub created_ms: u64,
}

/// `GET /api/v1/calendar`
#[derive(Debug, Serialize, ToSchema)]
pub struct Calendar {
    /// In order of their start.
    pub drops: Vec<CalendarEntry>,
}

/// The list, reused for [`CACHE_FOR`].
#[derive(Debug, Default)]
pub struct CalendarCache {
    kept: Mutex<Option<(Instant, Arc<Vec<CalendarEntry>>)>>,
}

impl CalendarCache {
    fn kept(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<CalendarEntry>>)>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the list (a drop was made here): the next read is fresh.
    pub fn forget(&self) {
        *self.kept() = None;
    }
}

/// The drops on the calendar now, in order of their start (then id).
pub async fn upcoming(state: &AppState) -> Result<Arc<Vec<CalendarEntry>>, AppError> {
    if let Some((at, list)) = state.calendar.kept().as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return Ok(Arc::clone(list));
    }
    let now = state.clock.now_ms();
    let mut list: Vec<CalendarEntry> = state
        .store
        .open_drops()
        .await?
        .into_iter()
        .filter_map(|r| {
            let view = TimelineView::compute(&r.spec.script, &r.log, now);
            let starts_at = r.spec.starts_at?;
            on_calendar(&r, &view, now).then(|| CalendarEntry {
                url: format!("/live/{}", r.id),
                id: r.id.to_string(),
                title: r.spec.title,
                maker: r.maker,
                kind: r.spec.kind,
                starts_at,
                starts_ms: starts_at.ms(),
                duration_s: r.spec.script.duration_s,
                state: view.state,
                auto_start: r.spec.auto_start,
                created_ms: r.created_ms,
            })
        })
        .collect();
    list.sort_by(|a, b| (a.starts_ms, &a.id).cmp(&(b.starts_ms, &b.id)));
    let list = Arc::new(list);
    *state.calendar.kept() = Some((Instant::now(), Arc::clone(&list)));
    Ok(list)
}

/// The hub's public base URL: `--public-url`, else `http://` and the request's `Host`
/// (when it is a plain host name or address, with an optional port).
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The query of the calendar's list and feed: `?maker=<id>` keeps that maker's drops.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// Only this maker's drops (a maker id: 1-64 of a-z, 0-9 and -).
    #[param(min_length = 1, max_length = 64, pattern = "^[a-z0-9-]{1,64}$")]
    pub maker: Option<String>,
}

/// [`upcoming`], of one maker when `maker` names one.
pub async fn upcoming_of(
    state: &AppState,
    maker: Option<&str>,
) -> Result<Vec<CalendarEntry>, AppError> {
    let list = upcoming(state).await?;
    Ok(list
        .iter()
        .filter(|e| maker.is_none_or(|m| e.maker == m))
        .cloned()
        .collect())
}

/// The calendar's query, or 400 naming what is wrong.
pub fn read_query(
    query: Result<axum::extract::Query<CalendarQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<CalendarQuery, AppError> {
    let q = query
        .map(|q| q.0)
        .map_err(|e| AppError::bad_request("bad_request", e.body_text(), None))?;
    if let Some(maker) = &q.maker {
        dropwire_core::coop::check_id("maker", "maker", maker).map_err(|e| {
            AppError::bad_request("bad_request", e.to_string(), Some("maker".into()))
        })?;
    }
    Ok(q)
}

/// `GET /calendar.ics`: the upcoming drops as an RFC 5545 feed to subscribe to.
pub async fn feed(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<CalendarQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let q = read_query(query)?;
    let list = upcoming_of(&state, q.maker.as_deref()).await?;
    let base = base_url(&state, &headers);
    let body = ics::render(&list, &base);
    let mut out = body.into_response();
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"dropwire-calendar.ics\""),
    );
    Ok(out)
}
