//! The one error type of `dropwire-core`.

use crate::timeline::DropState;

/// What the domain refuses, with enough detail for a message a maker can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// A create body or script broke a rule; `field` is a JSON path such as `script.cues[2].sku`.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A control action that makes no sense from the drop's current state.
    #[error("cannot {action} a drop that is {state}")]
    WrongState {
        action: &'static str,
        state: DropState,
    },
    /// Fire-now of a script cue that has already fired.
    #[error("script cue {index} has already fired")]
    AlreadyFired { index: usize },
    /// Fire-now of a script cue index that does not exist.
    #[error("the script has no cue {index} (it has {len})")]
    NoSuchCue { index: usize, len: usize },
}

impl CoreError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
