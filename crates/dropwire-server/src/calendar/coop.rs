//! A co-op's shared launch calendar: the launch calendar filtered to the drops of the
//! co-op's member makers (`GET /api/v1/coops/{id}/calendar`, `GET /coops/{id}/calendar.ics`),
//! each entry with the drops of the co-op whose live windows it overlaps
//! ([`dropwire_core::coop::overlaps`]). The list comes from [`super::upcoming`], so it costs
//! what the public calendar costs, plus one read of the co-op's members.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dropwire_core::StartsAt;
use dropwire_core::coop::{Overlap, Slot, overlaps};
use dropwire_funnel::Coop;
use serde::Serialize;
use utoipa::ToSchema;

use super::{CalendarEntry, base_url, ics, upcoming};
use crate::app::AppState;
use crate::error::AppError;

/// One drop on a co-op's calendar: the launch calendar's entry, and what it collides with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoopCalendarEntry {
    #[serde(flatten)]
    pub entry: CalendarEntry,
    /// The ids of the co-op's other listed drops whose live windows (`starts_ms` plus
    /// `duration_s`) intersect this one's, in order of their start.
    pub overlaps: Vec<String>,
}

/// Two of a co-op's drops whose live windows intersect.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoopOverlap {
    /// The one that starts first.
    pub a: OverlapDrop,
    pub b: OverlapDrop,
    /// Where the windows intersect: `[from_ms, to_ms)`, Unix ms.
    pub from_ms: u64,
    pub to_ms: u64,
    /// The same, RFC 3339 in UTC.
    #[schema(value_type = String, format = DateTime)]
    pub from: StartsAt,
    #[schema(value_type = String, format = DateTime)]
    pub to: StartsAt,
}

/// A drop of an overlap.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverlapDrop {
    pub id: String,
    pub title: String,
    pub maker: String,
    pub starts_ms: u64,
    pub duration_s: u32,
}

impl OverlapDrop {
    fn of(e: &CalendarEntry) -> Self {
        OverlapDrop {
            id: e.id.clone(),
            title: e.title.clone(),
            maker: e.maker.clone(),
            starts_ms: e.starts_ms,
            duration_s: e.duration_s,
        }
    }
}

/// Another drop of a co-op that a drop collides with (a warning to its maker: nothing is
/// refused).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoopClash {
    /// The co-op both drops are on.
    pub coop: String,
    /// The other drop.
    pub with: OverlapDrop,
    /// Where the live windows intersect: `[from_ms, to_ms)`, Unix ms.
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The drop `id` of `maker` with what it collides with on the calendars of the co-ops
/// `maker` belongs to, for the drop's admin view. Best effort: without a ledger, or when
/// the ledger cannot be read (logged), no warnings.
pub async fn clashes(state: &AppState, id: &str, maker: &str) -> Vec<CoopClash> {
    match try_clashes(state, id, maker).await {
        Ok(found) => found,
        Err(AppError::LedgerOff) => Vec::new(),
        Err(e) => {
            tracing::warn!(drop = %id, error = %e, "cannot look for co-op overlaps");
            Vec::new()
        }
    }
}

async fn try_clashes(state: &AppState, id: &str, maker: &str) -> Result<Vec<CoopClash>, AppError> {
    let coops = state.ledger()?.coops().await?;
    let mut found = Vec::new();
    for coop in coops.iter().filter(|c| c.makers.iter().any(|m| m == maker)) {
        let (drops, pairs) = listed(state, coop).await?;
        for o in &pairs {
            let other = if drops[o.a].id == id {
                o.b
            } else if drops[o.b].id == id {
                o.a
            } else {
                continue;
            };
            found.push(CoopClash {
                coop: coop.id.clone(),
                with: OverlapDrop::of(&drops[other]),
                from_ms: o.from_ms,
                to_ms: o.to_ms,
            });
        }
    }
    Ok(found)
}

/// The co-op `id`, or 404 `no_such_coop`.
pub async fn find(state: &AppState, id: &str) -> Result<Coop, AppError> {
    state
        .ledger()?
        .coop(id)
        .await?
        .ok_or_else(|| AppError::NoSuchCoop(format!("no co-op {id:?}")))
}

/// The co-op's upcoming drops (its members', in order of their start) and their overlaps
/// (indices into the drops).
pub async fn listed(
    state: &AppState,
    coop: &Coop,
) -> Result<(Vec<CalendarEntry>, Vec<Overlap>), AppError> {
    let drops: Vec<CalendarEntry> = upcoming(state)
        .await?
        .iter()
        .filter(|e| coop.makers.contains(&e.maker))
        .cloned()
        .collect();
    let slots: Vec<Slot> = drops
        .iter()
        .map(|e| Slot {
            start_ms: e.starts_ms,
            duration_s: e.duration_s,
        })
        .collect();
    let pairs = overlaps(&slots);
    Ok((drops, pairs))
}

/// The overlaps as the API shows them.
pub fn described(drops: &[CalendarEntry], pairs: &[Overlap]) -> Vec<CoopOverlap> {
    pairs
        .iter()
        .map(|o| CoopOverlap {
            a: OverlapDrop::of(&drops[o.a]),
            b: OverlapDrop::of(&drops[o.b]),
            from_ms: o.from_ms,
            to_ms: o.to_ms,
            from: StartsAt(o.from_ms),
            to: StartsAt(o.to_ms),
        })
        .collect()
}

/// The co-op's calendar entries, each with its overlaps (in O(entries + pairs)).
pub fn with_overlaps(drops: Vec<CalendarEntry>, pairs: &[Overlap]) -> Vec<CoopCalendarEntry> {
    let mut others: Vec<Vec<usize>> = vec![Vec::new(); drops.len()];
    for o in pairs {
        others[o.a].push(o.b);
        others[o.b].push(o.a);
    }
    // The drops are in order of their start (then id): so are indices sorted.
    let ids: Vec<String> = drops.iter().map(|d| d.id.clone()).collect();
    drops
        .into_iter()
        .zip(others)
        .map(|(entry, mut with)| {
            with.sort_unstable();
            CoopCalendarEntry {
                entry,
                overlaps: with.into_iter().map(|i| ids[i].clone()).collect(),
            }
        })
        .collect()
}

/// `GET /coops/{id}/calendar.ics`: a co-op's upcoming drops as an RFC 5545 feed.
pub async fn feed(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let coop = find(&state, &id).await?;
    let (drops, _) = listed(&state, &coop).await?;
    let base = base_url(&state, &headers);
    let body = ics::render_named(&drops, &base, &format!("{} launches", coop.name));
    let mut out = body.into_response();
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"dropwire-coop-calendar.ics\""),
    );
    Ok(out)
}
