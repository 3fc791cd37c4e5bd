//! `dropwire healthcheck`, the real binary: 0 for a ready hub, 1 with one line on stderr
//! for anything else, and the hub found from the same environment as `dropwire serve`.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::Spawned;
use dropwire_store::testing::Port;

/// Runs `dropwire healthcheck args` with `env` added to a clean `DROPWIRE_*` environment.
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dropwire"));
    cmd.arg("healthcheck").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DROPWIRE_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .context("cannot run dropwire healthcheck")?;
    Ok(out)
}

/// Stderr, which must be exactly one line.
fn one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    err
}

#[test]
fn a_ready_hub_is_healthy_and_a_closed_port_is_not() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hub = Spawned::on_dir(dir.path())?;
    let ok = healthcheck(&["--url", &hub.base], &[])?;
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(said.contains("/readyz answered 200"), "{said}");

    // A reserved port nothing listens on.
    let closed = Port::free();
    let url = format!("http://127.0.0.1:{}", closed.port);
    let down = healthcheck(&["--url", &url], &[])?;
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    let err = one_line(&down);
    assert!(
        err.starts_with(&format!("dropwire healthcheck: cannot reach {url}/readyz")),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_hub_is_found_from_the_environment_serve_runs_in() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hub = Spawned::on_dir(dir.path())?;
    let port = hub.base.rsplit(':').next().context("a port")?;
    // As in the container: the hub listens on every address, and the other settings and a
    // variable of the scripts around it are there too; none may upset the check.
    let bind = format!("0.0.0.0:{port}");
    let ok = healthcheck(
        &[],
        &[
            ("DROPWIRE_BIND", &bind),
            ("DROPWIRE_DATA_DIR", "/nonexistent/dropwire"),
            ("DROPWIRE_ADMIN_TOKEN", common::ADMIN),
            ("DROPWIRE_LOG", "info,dropwire=[["),
            ("DROPWIRE_BIN", "/usr/local/bin/dropwire"),
        ],
    )?;
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        said.contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{said}"
    );
    // A bind the check cannot ask is named.
    let bad = healthcheck(&[], &[("DROPWIRE_BIND", "0.0.0.0:0")])?;
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(one_line(&bad).contains("DROPWIRE_BIND"));
    Ok(())
}

/// A one-connection server on a free port: answers `response` (or nothing, when `None`).
fn fake_hub(response: Option<&'static str>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            match response {
                Some(r) => {
                    let _ = conn.write_all(r.as_bytes());
                }
                None => std::thread::sleep(Duration::from_secs(10)),
            }
        }
    });
    Ok(url)
}

#[test]
fn a_hub_that_is_not_ready_or_does_not_answer_is_unhealthy() -> Result<()> {
    let draining = fake_hub(Some(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: 21\r\nconnection: close\r\n\r\n{\"status\":\"draining\"}",
    ))?;
    let out = healthcheck(&["--url", &draining], &[])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = one_line(&out);
    assert!(
        err.contains("answered 503 Service Unavailable (draining)"),
        "{err}"
    );

    let silent = fake_hub(None)?;
    let out = healthcheck(&["--url", &silent, "--timeout-s", "1"], &[])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = one_line(&out);
    assert!(
        err.contains("no answer from") && err.contains("within 1 s"),
        "{err}"
    );
    Ok(())
}
