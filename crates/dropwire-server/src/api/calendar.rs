//! `GET /api/v1/calendar`: the launch calendar, public (see [`crate::calendar`]).

use axum::Json;
use axum::extract::State;

use crate::app::AppState;
use crate::calendar::{self, Calendar};
use crate::error::{AppError, ErrorBody};

/// `GET /api/v1/calendar`
#[utoipa::path(
    get,
    path = "/api/v1/calendar",
    tag = "calendar",
    operation_id = "calendar",
    summary = "The upcoming drops (public): those with a `starts_at`, until they close or their slot passes",
    security(()),
    responses(
        (status = 200, description = "The drops, in order of their start. The same list as an iCalendar feed: `GET /calendar.ics`", body = Calendar),
        (status = 503, description = "`unavailable`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Calendar>, AppError> {
    let drops = calendar::upcoming(&state).await?;
    Ok(Json(Calendar {
        drops: drops.as_ref().clone(),
    }))
}
