//! Start-up of the real binary: every `DROPWIRE_*` twin of a flag is accepted, and a typo
//! or an invalid value stops it with a message that names the setting.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{ADMIN, Spawned};

/// Runs `dropwire serve` with `env` and expects it to refuse to start; returns its stderr.
fn refused(env: &[(&str, &str)]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropwire"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--admin-token", ADMIN])
        .arg("--data-dir")
        .arg(dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            bail!("dropwire serve with {env:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    assert!(!out.status.success(), "{env:?} started");
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_misspelt_variable_stops_start_up_and_is_named() -> Result<()> {
    let err = refused(&[("DROPWIRE_REDIS_CLUSTR", "true")])?;
    assert!(
        err.contains(
            "unknown environment variable DROPWIRE_REDIS_CLUSTR (did you mean DROPWIRE_REDIS_CLUSTER?)"
        ),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_variable_of_the_scripts_around_the_hub_is_named_with_the_rule() -> Result<()> {
    let err = refused(&[("DROPWIRE_BIN", "/usr/local/bin/dropwire")])?;
    assert!(
        err.contains("unknown environment variable DROPWIRE_BIN"),
        "{err}"
    );
    assert!(
        err.contains("dropwire reads only its own DROPWIRE_* variables"),
        "{err}"
    );
    assert!(err.contains("rename or unset it"), "{err}");
    Ok(())
}

#[test]
fn an_invalid_log_filter_stops_start_up_and_is_named() -> Result<()> {
    let err = refused(&[("DROPWIRE_LOG", "info,dropwire=[[")])?;
    assert!(err.contains("DROPWIRE_LOG"), "{err}");
    Ok(())
}

#[test]
fn an_invalid_value_in_the_environment_is_named() -> Result<()> {
    let err = refused(&[("DROPWIRE_REDIS_CLUSTER", "yes please")])?;
    assert!(err.contains("redis-cluster"), "{err}");
    Ok(())
}

#[test]
fn every_flag_twin_in_the_environment_is_accepted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Spawned sets DROPWIRE_LOG itself; these are the twins most easily forgotten.
    let server = Spawned::serve_with_env(
        &["--data-dir".as_ref(), dir.path().as_os_str()],
        &[
            ("DROPWIRE_REDIS_CLUSTER", "false"),
            ("DROPWIRE_REDIS_WAIT_REPLICAS", "0"),
            ("DROPWIRE_VIEWER_QUEUE", "128"),
            ("DROPWIRE_SHUTDOWN_GRACE_S", "1"),
        ],
    )
    .context("the hub did not start")?;
    assert!(server.base.starts_with("http://127.0.0.1:"));
    Ok(())
}
