//! The settings' tests: precedence, validation, the flags' environment twins.

use super::*;

#[test]
fn defaults_and_bad_values() {
    let cfg = Config::resolve(ServeArgs::default()).unwrap();
    assert_eq!(cfg.bind.to_string(), "127.0.0.1:8080");
    let err = Config::resolve(ServeArgs {
        bind: Some("nowhere".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("bind"), "{err}");
    let err = Config::resolve(ServeArgs {
        viewer_queue: Some(1),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("viewer-queue"), "{err}");
}

#[test]
fn file_values_apply_under_flags_and_unknown_keys_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropwire.toml");
    std::fs::write(&path, "bind = \"127.0.0.1:9999\"\nviewer_queue = 64\n").unwrap();
    let cfg = Config::resolve(ServeArgs {
        config: Some(path.clone()),
        viewer_queue: Some(32),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((cfg.bind.port(), cfg.viewer_queue), (9999, 32));
    std::fs::write(&path, "bnd = \"x\"\n").unwrap();
    let err = Config::resolve(ServeArgs {
        config: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    // The message names the file; its cause (the parse error) names the key.
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(err.to_string().contains("dropwire.toml"), "{err}");
    assert!(
        cause.as_deref().is_some_and(|c| c.contains("bnd")),
        "{cause:?}"
    );
}

#[test]
fn every_flag_has_a_known_environment_twin() {
    let known = known_env();
    for name in [
        "DROPWIRE_REDIS_URL",
        "DROPWIRE_REDIS_CLUSTER",
        "DROPWIRE_REDIS_WAIT_REPLICAS",
        "DROPWIRE_BIND",
        "DROPWIRE_LOG",
    ] {
        assert!(
            known.iter().any(|k| k == name),
            "{name} missing from {known:?}"
        );
    }
    // One twin per flag, and nothing else but the log filter.
    let flags = ServeArgs::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .filter(|a| a.get_long().is_some())
        .count();
    assert_eq!(known.len(), flags + 1, "{known:?}");
}

#[test]
fn the_ledger_is_embedded_a_url_or_off() {
    let cfg = Config::resolve(ServeArgs::default()).unwrap();
    assert_eq!(cfg.ledger, LedgerSetting::Embedded);
    assert_eq!(
        cfg.ledger.url(Path::new("data")).as_deref(),
        Some("sqlite:data/ledger.sqlite3")
    );
    for (raw, url) in [
        ("off", None),
        ("postgres://dw@db/dw", Some("postgres://dw@db/dw")),
        ("sqlite:/var/lib/dw/l.db", Some("sqlite:/var/lib/dw/l.db")),
    ] {
        let cfg = Config::resolve(ServeArgs {
            ledger: Some(raw.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.ledger.url(Path::new("data")).as_deref(), url, "{raw}");
    }
    let err = Config::resolve(ServeArgs {
        ledger: Some("mysql://x".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--ledger"), "{err}");
}

#[test]
fn demo_alone_means_true_and_takes_a_value_like_the_other_switches() {
    let demo = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
        Command::Serve(args) => args.demo,
        Command::Healthcheck(_) => panic!("not serve"),
    };
    assert_eq!(demo(&["dropwire", "serve"]), None);
    assert_eq!(demo(&["dropwire", "serve", "--demo"]), Some(true));
    assert_eq!(
        demo(&["dropwire", "serve", "--demo", "--bind", "127.0.0.1:0"]),
        Some(true)
    );
    assert_eq!(demo(&["dropwire", "serve", "--demo", "false"]), Some(false));
    assert!(Cli::try_parse_from(["dropwire", "serve", "--demo", "maybe"]).is_err());
    let cfg = Config::resolve(ServeArgs {
        demo: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert!(cfg.demo);
    assert!(!Config::resolve(ServeArgs::default()).unwrap().demo);
}

#[test]
fn healthcheck_is_a_command_with_a_url_and_a_timeout() {
    let Command::Healthcheck(args) = Cli::try_parse_from(["dropwire", "healthcheck"])
        .unwrap()
        .command
    else {
        panic!("not healthcheck");
    };
    assert_eq!((args.url, args.timeout_s), (None, 2));
    let Command::Healthcheck(args) = Cli::try_parse_from([
        "dropwire",
        "healthcheck",
        "--url",
        "http://127.0.0.1:9000",
        "--timeout-s",
        "5",
    ])
    .unwrap()
    .command
    else {
        panic!("not healthcheck");
    };
    assert_eq!(args.url.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(args.timeout_s, 5);
}

#[test]
fn several_redis_urls_are_a_cluster_and_say_so() {
    let urls = "redis://10.0.0.1:7000,redis://10.0.0.2:7000";
    let err = Config::resolve(ServeArgs {
        redis: Some(urls.into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("--redis-cluster"), "{err}");
    let cfg = Config::resolve(ServeArgs {
        redis: Some(urls.into()),
        redis_cluster: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert!(cfg.redis_cluster);
    let err = Config::resolve(ServeArgs {
        redis_cluster: Some(true),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("redis-cluster"), "{err}");
}

#[test]
fn redis_retention_is_days_with_a_default_and_a_range() {
    let redis = || Some("redis://127.0.0.1:6379/".to_owned());
    let cfg = Config::resolve(ServeArgs {
        redis: redis(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        cfg.redis_retention(),
        Some(std::time::Duration::from_secs(90 * 86_400))
    );
    let cfg = Config::resolve(ServeArgs {
        redis: redis(),
        redis_retention_days: Some(0),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(cfg.redis_retention(), None, "0 keeps for ever");
    let err = Config::resolve(ServeArgs {
        redis: redis(),
        redis_retention_days: Some(40_000),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("redis-retention-days"), "{err}");
    let err = Config::resolve(ServeArgs {
        redis_retention_days: Some(7),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("only applies with --redis"),
        "{err}"
    );
    let bad = Cli::try_parse_from(["dropwire", "serve", "--redis-retention-days", "-1"]);
    assert!(bad.is_err(), "not a number of days");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropwire.toml");
    std::fs::write(
        &path,
        "redis = \"redis://127.0.0.1:6379/\"\nredis_retention_days = 30\nhub_idle_grace_s = 5\n",
    )
    .unwrap();
    let cfg = Config::resolve(ServeArgs {
        config: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((cfg.redis_retention_days, cfg.hub_idle_grace_s), (30, 5));
}

#[test]
fn the_hub_idle_grace_has_a_range() {
    assert_eq!(
        Config::resolve(ServeArgs::default())
            .unwrap()
            .hub_idle_grace_s,
        60
    );
    let err = Config::resolve(ServeArgs {
        hub_idle_grace_s: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("hub-idle-grace-s"), "{err}");
}

/// Each flag with a plain default, and that default as `Config::default()` has it: the one
/// table of defaults. The flags' help (`[default: …]`) and docs/operations.md must say the same.
fn code_defaults() -> Vec<(&'static str, String)> {
    let c = Config::default();
    let l = &c.limits;
    let w = &c.webhooks;
    let secs = |d: std::time::Duration| d.as_secs().to_string();
    let schedule: Vec<String> = w.schedule.iter().map(|d| secs(*d)).collect();
    vec![
        ("bind", c.bind.to_string()),
        ("data-dir", format!("./{}", c.data_dir.display())),
        ("viewer-queue", c.viewer_queue.to_string()),
        ("socket-send-buffer", c.socket_send_buffer.to_string()),
        ("fsync", c.fsync.to_string()),
        (
            "snapshot-every-records",
            c.journal.snapshots.every_records.to_string(),
        ),
        (
            "snapshot-every-mb",
            (c.journal.snapshots.every_bytes >> 20).to_string(),
        ),
        ("shutdown-grace-s", c.shutdown_grace_s.to_string()),
        ("redis-cluster", c.redis_cluster.to_string()),
        ("redis-wait-replicas", c.redis_wait_replicas.to_string()),
        ("redis-retention-days", c.redis_retention_days.to_string()),
        ("hub-idle-grace-s", c.hub_idle_grace_s.to_string()),
        ("webhook-allow-private", w.allow_private.to_string()),
        ("webhook-retry-schedule", schedule.join(",")),
        ("webhook-timeout-s", secs(w.timeout)),
        ("webhook-concurrency", w.concurrency.to_string()),
        ("demo", c.demo.to_string()),
        (
            "connections-per-client",
            l.connections_per_client.to_string(),
        ),
        ("connects-per-minute", l.connects_per_minute.to_string()),
        ("max-handshakes", l.max_handshakes.to_string()),
        ("mints-per-minute", l.mints_per_minute.to_string()),
        ("frames-per-s", l.frames_per_s.to_string()),
        ("frame-burst", l.frame_burst.to_string()),
        ("hello-timeout-s", secs(l.hello_timeout)),
        ("header-timeout-s", secs(l.header_timeout)),
        ("send-timeout-s", secs(l.send_timeout)),
        ("history", l.history.to_string()),
        ("redis-timeout-ms", l.redis_timeout.as_millis().to_string()),
        ("chat-max-chars", l.chat_max_chars.to_string()),
        ("chat-rate-per-min", l.chat_rate_per_min.to_string()),
        ("chat-burst", l.chat_burst.to_string()),
    ]
}

#[test]
fn the_documented_defaults_are_the_code_s() {
    use clap::CommandFactory;
    const OPERATIONS: &str = include_str!("../../../../docs/operations.md");
    // `| `--flag ARG` | `DROPWIRE_…` | default | meaning |`
    let documented: std::collections::HashMap<String, String> = OPERATIONS
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let flag = cells.get(1)?.trim_matches('`').split(' ').next()?;
            let default = cells.get(3)?.trim_matches('`');
            Some((flag.trim_start_matches('-').to_owned(), default.to_owned()))
        })
        .collect();
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let helped: std::collections::HashMap<String, String> = serve
        .get_arguments()
        .filter_map(|a| {
            let help = a.get_long_help().or(a.get_help())?.to_string();
            let default = help.split("[default: ").nth(1)?.split(']').next()?;
            Some((a.get_long()?.to_owned(), default.to_owned()))
        })
        .collect();
    let defaults = code_defaults();
    assert!(defaults.len() >= 28, "{defaults:?}");
    for (flag, value) in defaults {
        assert_eq!(
            documented.get(flag),
            Some(&value),
            "docs/operations.md's default of --{flag}"
        );
        assert_eq!(
            helped.get(flag),
            Some(&value),
            "--help's default of --{flag}"
        );
    }
}
