//! `dropwire healthcheck`: asks a running hub whether it is ready (`GET /readyz`), for
//! container health checks (the image has no curl). It runs in the same environment as
//! `dropwire serve` and finds the hub from the same settings: `DROPWIRE_BIND`, else the
//! `bind` of the `DROPWIRE_CONFIG` file, else 127.0.0.1:8080. It reads no other variable
//! and refuses none: the check must pass wherever the hub runs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use clap::Args;
use reqwest::Url;

use crate::error::ConfigError;

/// The port `dropwire serve` listens on when nothing says otherwise.
const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Flags of `dropwire healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The hub to ask: its base URL (`/readyz` is added) or a full URL to GET [default:
    /// http://127.0.0.1:PORT/readyz, PORT from DROPWIRE_BIND, else from the bind of the
    /// DROPWIRE_CONFIG file, else 8080; a hub bound to one address is asked there].
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 2)]
    pub timeout_s: u64,
}

/// Why the hub is not healthy, or cannot be asked; the `Display` is the one line printed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("invalid {name}: {message}")]
    Invalid { name: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{url} answered {status}{detail}")]
    NotReady {
        url: Url,
        status: reqwest::StatusCode,
        detail: String,
    },
    #[error("no answer from {url} within {timeout_s} s")]
    Timeout { url: Url, timeout_s: u64 },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: Url, reason: String },
}

fn invalid(name: &str, message: impl Into<String>) -> HealthcheckError {
    HealthcheckError::Invalid {
        name: name.to_owned(),
        message: message.into(),
    }
}

/// Asks the hub named by `args` and the environment; returns the line to print on success.
pub async fn run(args: &HealthcheckArgs) -> Result<String, HealthcheckError> {
    let env = |name: &str| -> Result<Option<String>, HealthcheckError> {
        match std::env::var_os(name) {
            None => Ok(None),
            Some(v) => v
                .into_string()
                .map(Some)
                .map_err(|_| invalid(name, "is not valid UTF-8")),
        }
    };
    let url = target(
        args.url.as_deref(),
        env("DROPWIRE_BIND")?.as_deref(),
        env("DROPWIRE_CONFIG")?.as_deref().map(Path::new),
    )?;
    if !(1..=300).contains(&args.timeout_s) {
        return Err(invalid("--timeout-s", "must be 1-300 seconds"));
    }
    let status = check(&url, args.timeout_s).await?;
    Ok(format!("{url} answered {status}"))
}

/// The URL to GET: `--url` (with `/readyz` added to a bare base URL), else the readiness
/// URL of the hub that `DROPWIRE_BIND` or the config file's `bind` describes.
pub fn target(
    url: Option<&str>,
    bind_env: Option<&str>,
    config_file: Option<&Path>,
) -> Result<Url, HealthcheckError> {
    if let Some(raw) = url {
        let mut url = Url::parse(raw.trim()).map_err(|e| {
            invalid(
                "--url",
                format!("{raw:?} is not a URL like http://127.0.0.1:8080 ({e})"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "--url",
                format!("{raw:?} is not http:// or https://"),
            ));
        }
        if url.path() == "/" {
            url.set_path("/readyz");
        }
        return Ok(url);
    }
    if let Some(bind) = bind_env {
        return readyz_of(bind, "DROPWIRE_BIND");
    }
    if let Some(path) = config_file
        && let Some(bind) = crate::config::bind_in_file(path)?
    {
        return readyz_of(&bind, &format!("bind in {}", path.display()));
    }
    readyz_of(DEFAULT_BIND, "the default bind")
}

/// `http://ADDR/readyz` for a hub listening on `bind`; a hub on every address (0.0.0.0 or
/// `[::]`) is asked on loopback.
fn readyz_of(bind: &str, source: &str) -> Result<Url, HealthcheckError> {
    let addr: SocketAddr = bind.trim().parse().map_err(|_| {
        invalid(
            source,
            format!("{bind:?} is not an address like 0.0.0.0:8080; pass --url"),
        )
    })?;
    if addr.port() == 0 {
        return Err(invalid(
            source,
            format!("{bind:?} has port 0 (a port of the kernel's choosing); pass --url"),
        ));
    }
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/readyz", SocketAddr::new(ip, addr.port()));
    Url::parse(&url).map_err(|e| invalid(source, format!("{bind:?} gives no URL ({e})")))
}

/// GETs `url`: Ok with the status when it is 2xx, otherwise why not.
pub async fn check(url: &Url, timeout_s: u64) -> Result<reqwest::StatusCode, HealthcheckError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_s))
        // The hub is asked directly: a proxy in the environment is not on the way to it.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| HealthcheckError::Unreachable {
            url: url.clone(),
            reason: format!("cannot make an HTTP client: {e}"),
        })?;
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            HealthcheckError::Timeout {
                url: url.clone(),
                timeout_s,
            }
        } else {
            let hint = if e.is_connect() {
                " (is dropwire serve running there?)"
            } else {
                ""
            };
            HealthcheckError::Unreachable {
                url: url.clone(),
                reason: format!("{}{hint}", root_cause(&e)),
            }
        }
    };
    let resp = client.get(url.clone()).send().await.map_err(failed)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(status);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(HealthcheckError::NotReady {
        url: url.clone(),
        status,
        detail: detail_of(&body),
    })
}

/// The innermost error of a chain: "Connection refused (os error 111)" rather than
/// "error sending request for url".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// What a refusal's body says, on one line: `/readyz`'s `status` (and `error`), or the
/// start of any other body.
fn detail_of(body: &str) -> String {
    let said = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if v["status"].is_string() => {
            let mut said = v["status"].as_str().unwrap_or_default().to_owned();
            if let Some(error) = v["error"].as_str() {
                said = format!("{said}: {error}");
            }
            said
        }
        _ => body.chars().take(200).collect(),
    };
    let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
    if said.is_empty() {
        String::new()
    } else {
        format!(" ({said})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(flag: Option<&str>, bind: Option<&str>) -> String {
        target(flag, bind, None).unwrap().to_string()
    }

    #[test]
    fn the_url_comes_from_the_flag_then_the_bind_then_the_default() {
        assert_eq!(url(None, None), "http://127.0.0.1:8080/readyz");
        assert_eq!(
            url(None, Some("0.0.0.0:9090")),
            "http://127.0.0.1:9090/readyz"
        );
        assert_eq!(url(None, Some("[::]:9090")), "http://[::1]:9090/readyz");
        assert_eq!(
            url(None, Some("10.1.2.3:8081")),
            "http://10.1.2.3:8081/readyz"
        );
        assert_eq!(
            url(Some("http://127.0.0.1:7000"), Some("0.0.0.0:9090")),
            "http://127.0.0.1:7000/readyz"
        );
        assert_eq!(
            url(Some("http://hub:7000/healthz"), None),
            "http://hub:7000/healthz"
        );
    }

    #[test]
    fn the_bind_of_the_config_file_is_used_when_the_environment_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dropwire.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:9191\"\n").unwrap();
        let from_file = target(None, None, Some(&path)).unwrap();
        assert_eq!(from_file.as_str(), "http://127.0.0.1:9191/readyz");
        let from_env = target(None, Some("0.0.0.0:9292"), Some(&path)).unwrap();
        assert_eq!(from_env.port(), Some(9292));
        std::fs::write(&path, "viewer_queue = 64\n").unwrap();
        let default = target(None, None, Some(&path)).unwrap();
        assert_eq!(default.port(), Some(8080));
    }

    #[test]
    fn bad_inputs_are_named() {
        for (flag, bind, named) in [
            (Some("not a url"), None, "--url"),
            (Some("ftp://hub/"), None, "--url"),
            (None, Some("nowhere"), "DROPWIRE_BIND"),
            (None, Some("127.0.0.1:0"), "DROPWIRE_BIND"),
        ] {
            let err = target(flag, bind, None).unwrap_err().to_string();
            assert!(err.contains(named), "{flag:?} {bind:?}: {err}");
        }
    }

    #[test]
    fn a_refusal_says_why_on_one_line() {
        assert_eq!(detail_of(r#"{"status":"draining"}"#), " (draining)");
        assert_eq!(
            detail_of(r#"{"status":"store unavailable","error":"redis:\ntimed out"}"#),
            " (store unavailable: redis: timed out)"
        );
        assert_eq!(
            detail_of("<h1>Bad\ngateway</h1>"),
            " (<h1>Bad gateway</h1>)"
        );
        assert_eq!(detail_of(""), "");
    }
}
