//! The server's clock. Production reads the system clock; tests anchor it to tokio's
//! clock so `tokio::time::pause()` drives the timeline deterministically.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Unix time from the system clock (what every node shares).
    System,
    /// `base_ms` at `base`, advancing with tokio's (pausable) clock.
    Tokio { base: Instant, base_ms: u64 },
}

pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock {
    pub fn tokio_anchored() -> Self {
        Clock::Tokio {
            base: Instant::now(),
            base_ms: system_now_ms(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_now_ms(),
            Clock::Tokio { base, base_ms } => base_ms + base.elapsed().as_millis() as u64,
        }
    }

    /// The tokio instant at which this clock will read `at_ms`.
    pub(crate) fn instant_at(&self, at_ms: u64) -> Instant {
        let now = self.now_ms();
        Instant::now() + Duration::from_millis(at_ms.saturating_sub(now))
    }
}
