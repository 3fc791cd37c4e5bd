//! Our own values as JSON. They always serialize (plain structs and enums, string keys, no
//! `Serialize` impl that can fail), so a failure is a bug: [`to_json`] logs it, naming what
//! was being written, and hands the error back. Callers send nothing rather than an empty
//! message.

use serde::Serialize;

/// `value` as JSON text; `what` names it in the log if it cannot be written.
pub fn to_json<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).inspect_err(|e| {
        tracing::error!(error = %e, what, "cannot write one of our own values as JSON");
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
        assert!(to_json("a test map", &bad).is_err());
        assert_eq!(to_json("a test map", &[1, 2]).unwrap(), "[1,2]");
    }
}
