//! `GET /api/v1/calendar`: the launch calendar, public (see [`crate::calendar`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};

use crate::app::AppState;
use crate::calendar::{self, Calendar, CalendarQuery};
use crate::error::{AppError, ErrorBody};

/// `GET /api/v1/calendar`
#[utoipa::path(
    get,
    path = "/api/v1/calendar",
    tag = "calendar",
    operation_id = "calendar",
    summary = "The upcoming drops (public): those with a `starts_at`, until they close or their slot passes",
    params(CalendarQuery),
    security(()),
    responses(
        (status = 200, description = "The drops, in order of their start. The same list as an iCalendar feed: `GET /calendar.ics`", body = Calendar),
        (status = 400, description = "`bad_request`: a malformed query", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<CalendarQuery>, QueryRejection>,
) -> Result<Json<Calendar>, AppError> {
    let q = calendar::read_query(query)?;
    let drops = calendar::upcoming_of(&state, q.maker.as_deref()).await?;
    Ok(Json(Calendar { drops }))
}
