//! The one error type of `dropwire-store`: one variant per kind of failure, each saying
//! what happened (the request's fault, or the backend's: [`StoreError::is_unavailable`]).

use std::sync::Arc;
use std::time::Duration;

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
    /// Reading or writing the data dir (journal, snapshot, archive).
    #[error("data dir I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A stored record cannot be read: in the journal, a snapshot or the archive.
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
    /// A journal write, fsync or rotation failed (this one or an earlier one): nothing more
    /// is written, so no good record can follow a bad one.
    #[error("the journal failed and the store refuses writes until restarted: {0}")]
    JournalFailed(#[source] Arc<std::io::Error>),
    /// A record the journal will not take (over its size limit).
    #[error("a journal record of {bytes} bytes is over the limit of {limit}")]
    RecordTooLarge { bytes: usize, limit: usize },
    /// One of the store's own tasks or threads (named) is gone.
    #[error("the {0} has stopped")]
    Stopped(&'static str),
    /// One of our own values could not be written as JSON (never happens: a bug).
    #[error("{what} cannot be written as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Snapshots were asked of a store that keeps nothing on disk.
    #[error("a store without a data dir takes no snapshots")]
    NoDataDir,
    /// The store's own bookkeeping contradicts itself (never happens: a bug).
    #[error("the store's state is inconsistent: {0}")]
    Inconsistent(String),
    #[error("no randomness from the OS: {0}")]
    Random(#[source] getrandom::Error),
    /// Fresh random claim codes kept colliding: the randomness is broken, not unlucky.
    #[error("{0} fresh claim codes in a row were already taken; is the OS's randomness broken?")]
    CodesTaken(u32),
    #[error("the store is overloaded; try again")]
    Busy,
    /// Redis (or a queue in front of it) did not answer within the time this call allows.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis or one of our scripts answered something this build cannot read.
    #[error("unexpected answer from redis ({what}): {detail}")]
    BadReply {
        what: String,
        detail: String,
        #[source]
        source: Option<Arc<serde_json::Error>>,
    },
    /// A write Redis made durable on the primary but fewer replicas confirmed than asked.
    #[error("redis confirmed the write on {reached} of the {wanted} replicas asked for")]
    TooFewReplicas { wanted: u32, reached: u32 },
    /// An error of the Redis client or server itself.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The failure of a whole claim batch, heard by each claim in it.
    #[error(transparent)]
    Batch(Arc<StoreError>),
}

impl StoreError {
    /// Whether the backend, not the request, is at fault (claims answer `unavailable`).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::AlreadyExists(_)
            | StoreError::NoSuchDrop(_)
            | StoreError::NoSuchClaim(_)
            | StoreError::NotHeld { .. }
            | StoreError::Conflict
            | StoreError::JournalVersion { .. } => false,
            StoreError::Io(_)
            | StoreError::Corrupt { .. }
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
            | StoreError::Redis(_) => true,
            StoreError::Batch(e) => e.is_unavailable(),
        }
    }
}
