//! The one error type of `dropwire-store`.

use dropwire_core::{ClaimCode, ClaimState, DropId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a drop with id {0} already exists")]
    AlreadyExists(DropId),
    #[error("no drop with id {0}")]
    NoSuchDrop(DropId),
    #[error("no claim with code {0}")]
    NoSuchClaim(ClaimCode),
    /// `drop` is the claim's drop (an expired hold that redeem expired on the spot gave its
    /// unit back to that drop's stock).
    #[error("claim {code} is {state:?}, not held")]
    NotHeld {
        code: ClaimCode,
        state: ClaimState,
        drop: DropId,
    },
    #[error("the control log changed meanwhile; read the drop again")]
    Conflict,
    #[error("journal I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A stored record cannot be read: in the journal (at byte `offset`) or in Redis.
    #[error("stored record at byte {offset} is unreadable: {what}")]
    Corrupt {
        offset: u64,
        what: &'static str,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("journal {path} is version {found}; this build reads version {expected}")]
    JournalVersion {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("the store failed earlier and refuses writes until restarted: {0}")]
    Failed(String),
    #[error("no randomness from the OS: {0}")]
    Random(String),
    #[error("the store is overloaded; try again")]
    Busy,
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl StoreError {
    /// Whether the backend, not the request, is at fault (claims answer `unavailable`).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Io(_)
                | StoreError::Failed(_)
                | StoreError::Random(_)
                | StoreError::Busy
                | StoreError::Corrupt { .. }
                | StoreError::Redis(_)
        )
    }
}
