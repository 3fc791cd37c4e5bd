//! Our own values as JSON. They always serialize (plain structs and enums, string keys, no
//! `Serialize` impl that can fail), so a failure is a bug: [`to_json`] logs it, naming what
//! was being written, counts it in `dropwire_serialize_failures_total{what}` and hands the
//! error back. Callers send nothing rather than an empty message.

use std::sync::OnceLock;

use prometheus::{IntCounterVec, Opts};
use serde::Serialize;

/// `value` as JSON text; `what` names it in the log and the metric if it cannot be written.
pub fn to_json<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).inspect_err(|e| {
        failures().with_label_values(&[what]).inc();
        tracing::error!(error = %e, what, "cannot write one of our own values as JSON");
    })
}

/// What the server writes with [`to_json`].
const WRITTEN: [&str; 6] = [
    "a broadcast",
    "a snapshot",
    "a message to a viewer",
    "a viewer token",
    "the stock figures",
    "the leaderboard",
];

/// Values that could not be written, by what they were: one counter for the process (a
/// value is written far from any server state), which every [`crate::metrics::Metrics`]
/// registers. `what` is always a `&'static str`, so its labels are bounded.
pub fn failures() -> &'static IntCounterVec {
    static FAILURES: OnceLock<IntCounterVec> = OnceLock::new();
    FAILURES.get_or_init(|| {
        let opts = Opts::new(
            "serialize_failures_total",
            "Values of our own that could not be written as JSON (a bug: nothing was sent), by what they were",
        );
        let failures = IntCounterVec::new(opts, &["what"]).expect("a valid metric");
        // Present at 0 from the start, so an increase is seen from the first failure.
        for what in WRITTEN {
            failures.with_label_values(&[what]).inc_by(0);
        }
        failures
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_value_that_cannot_be_written_is_an_error_not_an_empty_text() {
        // Map keys must be strings in JSON: a tuple key cannot be written.
        let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        let counted = || failures().with_label_values(&["a test map"]).get();
        let before = counted();
        assert!(to_json("a test map", &bad).is_err());
        assert_eq!(counted(), before + 1, "a failure is counted");
        assert_eq!(to_json("a test map", &[1, 2]).unwrap(), "[1,2]");
        assert_eq!(counted(), before + 1, "a success is not");
        let scraped = crate::metrics::Metrics::new().render();
        assert!(
            scraped.contains("dropwire_serialize_failures_total{what=\"a test map\"}"),
            "{scraped}"
        );
    }
}
