//! The one error type of `dropwire-funnel`.

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum FunnelError {
    /// The ledger URL is neither `sqlite:…` nor `postgres://…`.
    #[error("unsupported ledger URL {0:?}: use sqlite:PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
    /// The database could not be reached or refused a statement.
    #[error("ledger database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed (or the database has one this build does not know).
    #[error("ledger migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back (a kind or JSON this build does not know).
    #[error("ledger row {what}: {message}")]
    Corrupt { what: String, message: String },
}

impl FunnelError {
    pub(crate) fn corrupt(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        FunnelError::Corrupt {
            what: what.into(),
            message: message.to_string(),
        }
    }

    /// Whether the database is away (the caller may answer 503 and retry later) rather
    /// than the request being at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            FunnelError::Database(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            )
        )
    }
}
