//! `dropwire serve --demo`: a live drop to look at from the first command. The drop is
//! `examples/speckled-mugs.json` (embedded at build time) under the id `demo`, created and
//! started through the same code as `POST /api/v1/drops` and `…/start`.
//!
//! A restart on the same data reuses `demo` while it is not over (starting or resuming it
//! as needed); once it has closed, the next free `demo-<n>` (`demo-2`, `demo-3`, …) is made.

use dropwire_core::{ControlAction, CoreError, DropId, DropSpec, DropState, TimelineView};
use dropwire_store::StoreError;

use crate::api::{control_drop, create_drop};
use crate::app::AppState;
use crate::error::AppError;

/// The demo drop's create body: the example shipped in the repository.
pub(crate) const DEMO_SPEC: &str = include_str!("../../../examples/speckled-mugs.json");

/// The demo drop's id; later ones are `demo-2`, `demo-3`, …
pub(crate) const DEMO_ID: &str = "demo";

/// How many finished demo drops are skipped before giving up.
const MAX_DEMOS: u32 = 1000;

/// Why the demo drop could not be made live (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the embedded examples/speckled-mugs.json is not a drop: {0}")]
    Spec(#[source] serde_json::Error),
    #[error("the demo drops {first} to {last} are all over; use another --data-dir")]
    AllOver { first: String, last: String },
    #[error("drop {id} stays {state}")]
    NotLive { id: DropId, state: &'static str },
    /// Creating or starting it failed as the API call would have.
    #[error(transparent)]
    Api(#[from] AppError),
}

/// The id of the `n`th demo drop (from 1).
pub(crate) fn demo_id(n: u32) -> String {
    if n <= 1 {
        DEMO_ID.to_owned()
    } else {
        format!("{DEMO_ID}-{n}")
    }
}

/// The demo drop's spec under `id`.
pub(crate) fn demo_spec(id: &str) -> Result<DropSpec, DemoError> {
    let spec: DropSpec = serde_json::from_str(DEMO_SPEC).map_err(DemoError::Spec)?;
    Ok(DropSpec {
        id: Some(id.to_owned()),
        ..spec
    })
}

/// Finds or creates the demo drop and makes it live; returns its id.
pub async fn start_demo(state: &AppState) -> Result<DropId, DemoError> {
    let now = state.clock.now_ms();
    let drops = state.store.list_drops().await.map_err(AppError::from)?;
    let state_of = |id: &str| {
        drops
            .iter()
            .find(|r| r.id.as_str() == id)
            .map(|r| TimelineView::compute(&r.spec.script, &r.log, now).state)
    };
    for n in 1..=MAX_DEMOS {
        let id = demo_id(n);
        match state_of(&id) {
            Some(DropState::Closed) => continue,
            Some(_) => {}
            None => match create_drop(state, demo_spec(&id)?).await {
                Ok(_) => tracing::info!(drop = %id, "demo drop created"),
                // Another hub node on the same Redis made it first: use theirs.
                Err(AppError::Store(StoreError::AlreadyExists(_))) => {}
                Err(e) => return Err(e.into()),
            },
        }
        let id = DropId::parse(&id).map_err(AppError::from)?;
        make_live(state, &id).await?;
        return Ok(id);
    }
    Err(DemoError::AllOver {
        first: demo_id(1),
        last: demo_id(MAX_DEMOS),
    })
}

/// Starts a scheduled drop or resumes a paused one; a live one is left as it is.
async fn make_live(state: &AppState, id: &DropId) -> Result<(), DemoError> {
    let hub = state.hub(id).await?;
    // A refusal means another node acted in between: look again (a few times at most).
    for _ in 0..4 {
        let (_, view) = hub.view_at(state.clock.now_ms());
        let action = match view.state {
            DropState::Live => return Ok(()),
            DropState::Scheduled => ControlAction::Start,
            DropState::Paused => ControlAction::Resume,
            DropState::Closed => return Err(AppError::DropClosed(id.to_string()).into()),
        };
        match control_drop(&hub, action).await {
            Ok(()) => return Ok(()),
            Err(AppError::Domain(CoreError::WrongState { .. })) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let (_, view) = hub.view_at(state.clock.now_ms());
    if view.state == DropState::Live {
        Ok(())
    } else {
        Err(DemoError::NotLive {
            id: id.clone(),
            state: view.state.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_is_a_valid_drop() {
        let spec = demo_spec("demo-7").unwrap();
        assert_eq!(spec.id.as_deref(), Some("demo-7"));
        spec.validate().unwrap();
        assert!(DropId::parse(&demo_id(MAX_DEMOS)).is_ok());
        assert_eq!(
            (demo_id(1).as_str(), demo_id(2).as_str()),
            ("demo", "demo-2")
        );
    }
}
