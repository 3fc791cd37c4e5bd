//! Start-up of the real binary: every `DROPWIRE_*` twin of a flag is accepted, and a typo
//! or an invalid value stops it with a message that names the setting.

use crate::common;

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
fn a_config_file_that_does_not_parse_stops_start_up_with_its_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("dropwire.toml");
    std::fs::write(&file, "bind = [not toml\n")?;
    let out = Command::new(env!("CARGO_BIN_EXE_dropwire"))
        .args(["serve", "--bind", "127.0.0.1:0", "--admin-token", ADMIN])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    // A start-up error: exit code 1, the file and the fault named.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("Error: config file {}", file.display())),
        "{err}"
    );
    assert!(err.contains("unclosed array"), "{err}");
    // The cause once, under "Caused by", not repeated in the message above it.
    assert!(err.contains("Caused by:"), "{err}");
    assert_eq!(err.matches("unclosed array").count(), 1, "{err}");
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

/// `dropwire serve` with exactly `args` (no admin token unless given); returns the child,
/// its banner and its base URL once it listens.
fn start(args: &[&std::ffi::OsStr]) -> Result<(std::process::Child, Vec<String>, String)> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_dropwire"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("DROPWIRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut banner: Vec<String> = Vec::new();
    while !banner.last().is_some_and(|l| l.starts_with("admin token:")) {
        banner.push(lines.next().context("the hub exited before listening")??);
    }
    std::thread::spawn(move || lines.for_each(drop));
    let base = banner[0]
        .split("listening on ")
        .nth(1)
        .context("no address in the banner")?
        .trim()
        .to_owned();
    Ok((child, banner, base))
}

#[test]
fn the_admin_token_is_shown_only_when_made_and_only_to_a_terminal() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let args = ["--data-dir".as_ref(), dir.path().as_os_str()];
    let (mut first, banner, _) = start(&args)?;
    first.kill()?;
    first.wait()?;
    let token = std::fs::read_to_string(dir.path().join("admin-token"))?;
    let token = token.trim();
    assert!(token.starts_with("dwa_"), "{token}");
    let line = banner.last().context("banner")?;
    // Our stdout is a pipe (a log, as far as the hub knows): the token stays in the file.
    assert!(!line.contains(token), "{line}");
    assert!(
        line.contains("new, kept in") && line.contains("admin-token"),
        "{line}"
    );
    let (mut again, banner, _) = start(&args)?;
    again.kill()?;
    again.wait()?;
    let line = banner.last().context("banner")?;
    assert!(line.starts_with("admin token:   kept in "), "{line}");
    assert!(!line.contains(token), "{line}");
    Ok(())
}

#[tokio::test]
async fn during_a_rotation_both_admin_tokens_work_and_viewer_tokens_stay_valid() -> Result<()> {
    const OLD: &str = "old-admin-token-0123456789";
    const NEW: &str = "new-admin-token-0123456789";
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir()?;
    let dir_arg = ["--data-dir".as_ref(), dir.path().as_os_str()];
    let signing = "a-signing-secret-0123456789abcdef";
    let mut args: Vec<&std::ffi::OsStr> = dir_arg.to_vec();
    for a in ["--signing-secret", signing, "--admin-token"] {
        args.push(std::ffi::OsStr::new(a));
    }
    // Before: the old token alone. A viewer token is minted.
    let (mut hub, _, base) = start(&[args.as_slice(), &[std::ffi::OsStr::new(OLD)]].concat())?;
    let minted: serde_json::Value = http
        .post(format!("{base}/api/v1/viewers"))
        .bearer_auth(OLD)
        .json(&serde_json::json!({"handle": "ana"}))
        .send()
        .await?
        .json()
        .await?;
    let viewer_token = minted["token"].as_str().context("token")?.to_owned();
    let spec = common::drop_spec("rotation", 5, 1, common::far_script());
    let created = http
        .post(format!("{base}/api/v1/drops"))
        .bearer_auth(OLD)
        .json(&spec)
        .send()
        .await?;
    assert_eq!(created.status().as_u16(), 201);
    hub.kill()?;
    hub.wait()?;
    // During: both; after: the new one alone. The viewer token works throughout.
    for (tokens, accepted, refused) in [
        (format!("{NEW},{OLD}"), vec![NEW, OLD], vec![]),
        (NEW.to_owned(), vec![NEW], vec![OLD]),
    ] {
        let (mut hub, banner, base) =
            start(&[args.as_slice(), &[std::ffi::OsStr::new(&tokens)]].concat())?;
        assert!(!banner.concat().contains(NEW), "{banner:?}");
        for (token, status) in accepted
            .iter()
            .map(|t| (t, 200))
            .chain(refused.iter().map(|t| (t, 403)))
        {
            let resp = http
                .get(format!("{base}/api/v1/drops"))
                .bearer_auth(token)
                .send()
                .await?;
            assert_eq!(resp.status().as_u16(), status, "{token} with {tokens}");
        }
        // A valid viewer token who has not joined the waitlist: 404, not 401 bad_token.
        let me = http
            .get(format!("{base}/api/v1/drops/rotation/waitlist/me"))
            .bearer_auth(&viewer_token)
            .send()
            .await?;
        let body: serde_json::Value = me.json().await?;
        assert_eq!(
            body["error"]["code"], "not_on_waitlist",
            "with {tokens}: {body}"
        );
        hub.kill()?;
        hub.wait()?;
    }
    Ok(())
}
