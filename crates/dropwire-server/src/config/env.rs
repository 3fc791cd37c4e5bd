//! The `DROPWIRE_*` environment: which variables this build reads, the log filter, and the
//! rule that any other `DROPWIRE_*` variable stops start-up, naming the nearest known one.

use clap::Args;

use super::ServeArgs;
use crate::error::ConfigError;

/// The log filter (`tracing` directives, e.g. `info,dropwire_server=debug`): read before
/// the settings, so it is the one variable without a flag.
pub const LOG_ENV: &str = "DROPWIRE_LOG";

/// The prefix of every variable dropwire reads.
pub const ENV_PREFIX: &str = "DROPWIRE_";

/// Every `DROPWIRE_*` variable this build reads: each flag's twin, taken from the flags
/// themselves so the list cannot drift, and [`LOG_ENV`]. Any other is a typo and an error.
pub fn known_env() -> Vec<String> {
    ServeArgs::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .chain([LOG_ENV.to_owned()])
        .collect()
}

/// The log filter from `DROPWIRE_LOG` (`info` when it is not set); a value that is not a
/// valid filter stops start-up rather than silently logging at another level.
pub fn log_filter(value: Option<&str>) -> Result<tracing_subscriber::EnvFilter, ConfigError> {
    match value {
        None => Ok(tracing_subscriber::EnvFilter::new("info")),
        Some(spec) => tracing_subscriber::EnvFilter::builder()
            .parse(spec)
            .map_err(|e| ConfigError::InvalidEnv {
                name: LOG_ENV,
                message: format!(
                    "{spec:?} is not a log filter ({e}); try info or warn,dropwire_server=debug"
                ),
            }),
    }
}

/// A `DROPWIRE_*` variable that no setting reads, and the known one it most resembles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVar {
    pub name: String,
    pub nearest: Option<String>,
}

/// Names people reach for that no spelling distance leads to the right setting from.
const MEANT: &[(&str, &str)] = &[
    ("PORT", "BIND"),
    ("HOST", "BIND"),
    ("ADDR", "BIND"),
    ("ADDRESS", "BIND"),
    ("LISTEN", "BIND"),
    ("DATABASE_URL", "LEDGER_URL"),
    ("POSTGRES_URL", "LEDGER_URL"),
];

/// How alike `typed` is to the known suffix `known` (0–1): Jaro-Winkler similarity to the
/// whole of it, or, a little less, to one of its endings at a `_` (`TOKEN` is near
/// `ADMIN_TOKEN`, though the two start differently).
fn likeness(typed: &str, known: &str) -> f64 {
    let endings = known
        .match_indices('_')
        .map(|(i, _)| 0.95 * strsim::jaro_winkler(typed, &known[i + 1..]));
    endings.fold(strsim::jaro_winkler(typed, known), f64::max)
}

/// The known variable nearest to `name` (both with their `DROPWIRE_` prefix): by meaning
/// for a few common guesses, otherwise by [`likeness`] of the parts after the prefix
/// (which every candidate shares, so it would make them all look alike).
pub fn nearest_known(name: &str, known: &[String]) -> Option<String> {
    let suffix = |s: &str| s.strip_prefix(ENV_PREFIX).unwrap_or(s).to_owned();
    let wanted = suffix(name);
    if let Some((_, meant)) = MEANT.iter().find(|(guess, _)| *guess == wanted) {
        let meant = format!("{ENV_PREFIX}{meant}");
        if known.contains(&meant) {
            return Some(meant);
        }
    }
    let mut best: Option<(f64, &String)> = None;
    for candidate in known {
        let score = likeness(&wanted, &suffix(candidate));
        if best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, name)| name.clone())
}

/// The `DROPWIRE_*` names among `names` that are not in `known`, sorted, each with the
/// known variable nearest to it.
pub fn unknown_vars(names: impl IntoIterator<Item = String>, known: &[String]) -> Vec<UnknownVar> {
    let mut unknown: Vec<UnknownVar> = names
        .into_iter()
        .filter(|name| name.starts_with(ENV_PREFIX) && !known.contains(name))
        .map(|name| UnknownVar {
            nearest: nearest_known(&name, known),
            name,
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// Stops start-up when the process environment holds a `DROPWIRE_*` variable that no
/// setting reads: a typo would otherwise silently leave a setting at its default.
pub fn refuse_unknown_env() -> Result<(), ConfigError> {
    let names = std::env::vars_os().map(|(key, _)| key.to_string_lossy().into_owned());
    let unknown = unknown_vars(names, &known_env());
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::UnknownEnv(unknown))
    }
}

/// The message of [`ConfigError::UnknownEnv`], e.g. `unknown environment variable
/// DROPWIRE_REDIS (did you mean DROPWIRE_REDIS_URL?); dropwire reads only its own
/// DROPWIRE_* variables — rename or unset it (…)`.
pub fn unknown_env_message(unknown: &[UnknownVar]) -> String {
    let named: Vec<String> = unknown
        .iter()
        .map(|u| match &u.nearest {
            Some(nearest) => format!("{} (did you mean {nearest}?)", u.name),
            None => u.name.clone(),
        })
        .collect();
    let (noun, pronoun) = if named.len() == 1 {
        ("variable", "it")
    } else {
        ("variables", "them")
    };
    format!(
        "unknown environment {noun} {}; dropwire reads only its own DROPWIRE_* variables \
         — rename or unset {pronoun} (`dropwire serve --help` lists the known ones)",
        named.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suggestion_is_the_nearest_known_variable() {
        let known = known_env();
        for (typed, meant) in [
            ("DROPWIRE_REDIS", "DROPWIRE_REDIS_URL"),
            ("DROPWIRE_REDIS_CLUSTR", "DROPWIRE_REDIS_CLUSTER"),
            ("DROPWIRE_REDIS_REPLICAS", "DROPWIRE_REDIS_WAIT_REPLICAS"),
            ("DROPWIRE_BIN", "DROPWIRE_BIND"),
            ("DROPWIRE_DATADIR", "DROPWIRE_DATA_DIR"),
            ("DROPWIRE_ADMIN_TOKN", "DROPWIRE_ADMIN_TOKEN"),
            ("DROPWIRE_TOKEN", "DROPWIRE_ADMIN_TOKEN"),
            ("DROPWIRE_LEDGER", "DROPWIRE_LEDGER_URL"),
            ("DROPWIRE_WEBHOOK_TIMEOUT", "DROPWIRE_WEBHOOK_TIMEOUT_S"),
            ("DROPWIRE_SHUTDOWN_GRACE", "DROPWIRE_SHUTDOWN_GRACE_S"),
            ("DROPWIRE_PUBLICURL", "DROPWIRE_PUBLIC_URL"),
            ("DROPWIRE_FSYNCH", "DROPWIRE_FSYNC"),
            ("DROPWIRE_LOG_LEVEL", "DROPWIRE_LOG"),
            ("DROPWIRE_DEMO_MODE", "DROPWIRE_DEMO"),
            ("DROPWIRE_PORT", "DROPWIRE_BIND"),
            ("DROPWIRE_DATABASE_URL", "DROPWIRE_LEDGER_URL"),
        ] {
            assert_eq!(
                nearest_known(typed, &known).as_deref(),
                Some(meant),
                "{typed}"
            );
        }
    }

    #[test]
    fn only_unknown_dropwire_variables_are_reported_in_order() {
        let known = known_env();
        let env = [
            "PATH",
            "DROPWIRE_BIND",
            "DROPWIRE_REDIS",
            "DROPWIRE_LOG",
            "DROPWIRE_BIN",
            "MY_DROPWIRE_X",
        ]
        .map(String::from);
        let unknown = unknown_vars(env, &known);
        assert_eq!(
            unknown,
            vec![
                UnknownVar {
                    name: "DROPWIRE_BIN".into(),
                    nearest: Some("DROPWIRE_BIND".into()),
                },
                UnknownVar {
                    name: "DROPWIRE_REDIS".into(),
                    nearest: Some("DROPWIRE_REDIS_URL".into()),
                },
            ]
        );
        assert!(unknown_vars(known.clone(), &known).is_empty());
    }

    #[test]
    fn the_message_names_the_variable_its_nearest_and_the_rule() {
        let one = [UnknownVar {
            name: "DROPWIRE_REDIS".into(),
            nearest: Some("DROPWIRE_REDIS_URL".into()),
        }];
        let msg = ConfigError::UnknownEnv(one.to_vec()).to_string();
        assert!(
            msg.starts_with(
                "unknown environment variable DROPWIRE_REDIS (did you mean DROPWIRE_REDIS_URL?); \
                 dropwire reads only its own DROPWIRE_* variables — rename or unset it"
            ),
            "{msg}"
        );
        assert!(msg.contains("`dropwire serve --help`"), "{msg}");
        let two = [
            one[0].clone(),
            UnknownVar {
                name: "DROPWIRE_BIN".into(),
                nearest: Some("DROPWIRE_BIND".into()),
            },
        ];
        let msg = unknown_env_message(&two);
        assert!(
            msg.contains(
                "variables DROPWIRE_REDIS (did you mean DROPWIRE_REDIS_URL?), \
                 DROPWIRE_BIN (did you mean DROPWIRE_BIND?)"
            ),
            "{msg}"
        );
        assert!(msg.contains("rename or unset them"), "{msg}");
    }

    #[test]
    fn a_bad_log_filter_is_an_error_naming_it() {
        assert!(log_filter(None).is_ok());
        assert!(log_filter(Some("warn,dropwire_server=debug")).is_ok());
        let err = log_filter(Some("info,dropwire=[[")).unwrap_err();
        assert!(err.to_string().contains("DROPWIRE_LOG"), "{err}");
    }
}
