//! When the embedded store snapshots its state and truncates its journal: two flags with
//! `DROPWIRE_*` twins and keys of the config file's `[journal]` table; out-of-range values
//! stop start-up. (Settled drops are archived at every snapshot, and a snapshot is also
//! taken whenever a drop settles, whatever these say.)

use clap::Args;
use dropwire_store::SnapshotPolicy;
use serde::Deserialize;

use crate::error::ConfigError;

/// Flags of `dropwire serve` for the embedded store's journal.
#[derive(Debug, Clone, Default, Args)]
pub struct JournalArgs {
    /// Embedded store: take a snapshot (and truncate the journal) after this many journal
    /// records since the last one; 0: not on this count [default: 100000].
    #[arg(long, env = "DROPWIRE_SNAPSHOT_EVERY_RECORDS")]
    pub snapshot_every_records: Option<u64>,
    /// Embedded store: take a snapshot after this many MiB of journal since the last one;
    /// 0: not on this count [default: 64].
    #[arg(long, env = "DROPWIRE_SNAPSHOT_EVERY_MB")]
    pub snapshot_every_mb: Option<u64>,
}

/// The config file's `[journal]` table: the same keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileJournal {
    snapshot_every_records: Option<u64>,
    snapshot_every_mb: Option<u64>,
}

/// The journal settings in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalSettings {
    pub snapshots: SnapshotPolicy,
    /// Whether any was set (they apply to the embedded store only, not with --redis).
    pub set: bool,
}

const MAX_RECORDS: u64 = 100_000_000;
const MIN_RECORDS: u64 = 100;
const MAX_MB: u64 = 65_536;

impl JournalSettings {
    /// Flags and environment over the file's `[journal]` over the defaults.
    pub fn resolve(
        args: JournalArgs,
        file: Option<FileJournal>,
    ) -> Result<JournalSettings, ConfigError> {
        let file = file.unwrap_or_default();
        let records = args.snapshot_every_records.or(file.snapshot_every_records);
        let mb = args.snapshot_every_mb.or(file.snapshot_every_mb);
        let set = records.is_some() || mb.is_some();
        let records = records.unwrap_or(SnapshotPolicy::DEFAULT_RECORDS);
        if records != 0 && !(MIN_RECORDS..=MAX_RECORDS).contains(&records) {
            return Err(ConfigError::Invalid {
                name: "snapshot-every-records",
                message: format!(
                    "{records} is out of range: must be 0 (not on this count) or {MIN_RECORDS}-{MAX_RECORDS} records"
                ),
            });
        }
        let mb = mb.unwrap_or(SnapshotPolicy::DEFAULT_BYTES >> 20);
        if mb > MAX_MB {
            return Err(ConfigError::Invalid {
                name: "snapshot-every-mb",
                message: format!(
                    "{mb} is out of range: must be 0 (not on this count) or 1-{MAX_MB} MiB"
                ),
            });
        }
        Ok(JournalSettings {
            snapshots: SnapshotPolicy {
                every_records: records,
                every_bytes: mb << 20,
                ..SnapshotPolicy::default()
            },
            set,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        let d = JournalSettings::resolve(JournalArgs::default(), None).unwrap();
        assert_eq!(d, JournalSettings::default());
        assert_eq!(d.snapshots.every_records, 100_000);
        assert_eq!(d.snapshots.every_bytes, 64 << 20);
        let file: FileJournal =
            toml::from_str("snapshot_every_records = 5000\nsnapshot_every_mb = 8").unwrap();
        let args = JournalArgs {
            snapshot_every_records: Some(20_000),
            ..Default::default()
        };
        let s = JournalSettings::resolve(args, Some(file)).unwrap();
        assert_eq!(
            s.snapshots,
            SnapshotPolicy {
                every_records: 20_000,
                every_bytes: 8 << 20,
                ..SnapshotPolicy::default()
            }
        );
        assert!(s.set);
        let off = JournalArgs {
            snapshot_every_records: Some(0),
            snapshot_every_mb: Some(0),
        };
        assert_eq!(
            JournalSettings::resolve(off, None).unwrap().snapshots,
            SnapshotPolicy::on_settle_only()
        );
    }

    #[test]
    fn out_of_range_values_name_the_flag() {
        for (args, flag) in [
            (
                JournalArgs {
                    snapshot_every_records: Some(10),
                    ..Default::default()
                },
                "snapshot-every-records",
            ),
            (
                JournalArgs {
                    snapshot_every_records: Some(MAX_RECORDS + 1),
                    ..Default::default()
                },
                "snapshot-every-records",
            ),
            (
                JournalArgs {
                    snapshot_every_mb: Some(MAX_MB + 1),
                    ..Default::default()
                },
                "snapshot-every-mb",
            ),
        ] {
            let err = JournalSettings::resolve(args, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
        let bad: Result<FileJournal, _> = toml::from_str("every_records = 3");
        assert!(bad.is_err(), "unknown keys in [journal] are refused");
    }
}
