//! Fair start on a viewer's connection: the claims it has entered in draws, each to be
//! asked again (same rid) at its draw's time, when the store holds the draw (if no one has
//! yet) and answers with the drawn result. The connection task owns this list and waits
//! on its earliest time beside its socket and the broadcasts, so waiting for a draw never
//! blocks the connection.

use tokio::time::Instant;

/// Entries a connection waits on at most; a claim entered beyond them gets its
/// `draw_entered` all the same, and its result when the client asks again.
pub const MAX_PENDING: usize = 32;

/// A connection's entered claims, by when to ask again.
#[derive(Debug, Default)]
pub struct PendingDraws {
    waiting: Vec<(Instant, String, String)>,
}

impl PendingDraws {
    /// Asks again for (`sku`, `rid`) at `at` (once per rid: a repeated entry moves it).
    pub fn push(&mut self, at: Instant, sku: String, rid: String) {
        self.waiting.retain(|(_, _, r)| *r != rid);
        if self.waiting.len() < MAX_PENDING {
            self.waiting.push((at, sku, rid));
        }
    }

    /// The earliest time to ask again.
    pub fn next(&self) -> Option<Instant> {
        self.waiting.iter().map(|(at, _, _)| *at).min()
    }

    /// The (sku, rid) due at `now`, in order of their times.
    pub fn take_due(&mut self, now: Instant) -> Vec<(String, String)> {
        let mut due: Vec<(Instant, String, String)> = Vec::new();
        self.waiting.retain(|w| {
            if w.0 <= now {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|w| w.0);
        due.into_iter().map(|(_, sku, rid)| (sku, rid)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_entries_come_out_in_time_order_once() {
        let t = Instant::now();
        let mut p = PendingDraws::default();
        p.push(t + Duration::from_secs(2), "mug".into(), "b".into());
        p.push(t + Duration::from_secs(1), "mug".into(), "a".into());
        p.push(t + Duration::from_secs(3), "jug".into(), "c".into());
        p.push(t + Duration::from_secs(1), "mug".into(), "a".into());
        assert_eq!(p.next(), Some(t + Duration::from_secs(1)));
        let due = p.take_due(t + Duration::from_secs(2));
        assert_eq!(
            due,
            [("mug".into(), "a".into()), ("mug".into(), "b".into())]
        );
        assert_eq!(p.next(), Some(t + Duration::from_secs(3)));
        for i in 0..2 * MAX_PENDING {
            p.push(t, "mug".into(), format!("r{i}"));
        }
        assert_eq!(p.waiting.len(), MAX_PENDING, "bounded");
    }
}
