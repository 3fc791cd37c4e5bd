//! The limits a viewer or a proxy meets, each a flag with a `DROPWIRE_*` twin and a key of
//! the config file's `[limits]` table; out-of-range values stop start-up.

use std::time::Duration;

use clap::Args;
use dropwire_store::redis::DEFAULT_OP_TIMEOUT;
use serde::Deserialize;

use crate::admission::parse_origins;
use crate::client_ip::TrustedProxies;
use crate::error::ConfigError;

/// Flags of `dropwire serve` for its limits.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Proxies (addresses or CIDR blocks, separated by commas) whose `Forwarded` and
    /// `X-Forwarded-For` headers name the client, for the limits per client [default: none].
    #[arg(long, env = "DROPWIRE_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Page origins (https://shop.example, separated by commas) that may open viewer
    /// connections besides the hub's own pages; clients that send no Origin are not
    /// browsers and may [default: any origin].
    #[arg(long, env = "DROPWIRE_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Viewer connections one client may hold at once [default: 1000].
    #[arg(long, env = "DROPWIRE_CONNECTIONS_PER_CLIENT")]
    pub connections_per_client: Option<u32>,
    /// Viewer connections one client may open per minute [default: 1200].
    #[arg(long, env = "DROPWIRE_CONNECTS_PER_MINUTE")]
    pub connects_per_minute: Option<u32>,
    /// Viewer connections between their upgrade request and their welcome at once, on the
    /// whole hub; more get 503 `busy` with Retry-After [default: 2048].
    #[arg(long, env = "DROPWIRE_MAX_HANDSHAKES")]
    pub max_handshakes: Option<usize>,
    /// Viewer tokens one client may mint per minute without the admin token [default: 30].
    #[arg(long, env = "DROPWIRE_MINTS_PER_MINUTE")]
    pub mints_per_minute: Option<u32>,
    /// Frames a viewer may send per second [default: 10].
    #[arg(long, env = "DROPWIRE_FRAMES_PER_S")]
    pub frames_per_s: Option<u32>,
    /// Frames a viewer may send in a burst [default: 30].
    #[arg(long, env = "DROPWIRE_FRAME_BURST")]
    pub frame_burst: Option<u32>,
    /// Seconds a new connection has to say hello [default: 10].
    #[arg(long, env = "DROPWIRE_HELLO_TIMEOUT_S")]
    pub hello_timeout_s: Option<u64>,
    /// Seconds a client has to send a request's headers (and an idle keep-alive connection
    /// lives) [default: 30].
    #[arg(long, env = "DROPWIRE_HEADER_TIMEOUT_S")]
    pub header_timeout_s: Option<u64>,
    /// Seconds one write to a viewer may take before it is closed as slow [default: 5].
    #[arg(long, env = "DROPWIRE_SEND_TIMEOUT_S")]
    pub send_timeout_s: Option<u64>,
    /// Broadcasts kept per drop for viewers that resume with `since` [default: 1024].
    #[arg(long, env = "DROPWIRE_HISTORY")]
    pub history: Option<usize>,
    /// With --redis: milliseconds one Redis operation may take [default: 500].
    #[arg(long, env = "DROPWIRE_REDIS_TIMEOUT_MS")]
    pub redis_timeout_ms: Option<u64>,
    /// The longest chat message, in characters (Unicode scalar values) [default: 280].
    #[arg(long, env = "DROPWIRE_CHAT_MAX_CHARS")]
    pub chat_max_chars: Option<usize>,
    /// Chat messages a viewer may send per minute, on average [default: 20].
    #[arg(long, env = "DROPWIRE_CHAT_RATE_PER_MIN")]
    pub chat_rate_per_min: Option<u32>,
    /// Chat messages a viewer may send at once [default: 5].
    #[arg(long, env = "DROPWIRE_CHAT_BURST")]
    pub chat_burst: Option<u32>,
}

/// The config file's `[limits]` table: the same keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    trusted_proxies: Option<String>,
    allowed_origins: Option<String>,
    connections_per_client: Option<u32>,
    connects_per_minute: Option<u32>,
    max_handshakes: Option<usize>,
    mints_per_minute: Option<u32>,
    frames_per_s: Option<u32>,
    frame_burst: Option<u32>,
    hello_timeout_s: Option<u64>,
    header_timeout_s: Option<u64>,
    send_timeout_s: Option<u64>,
    history: Option<usize>,
    redis_timeout_ms: Option<u64>,
    chat_max_chars: Option<usize>,
    chat_rate_per_min: Option<u32>,
    chat_burst: Option<u32>,
}

/// The limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub trusted_proxies: TrustedProxies,
    pub allowed_origins: Vec<String>,
    pub connections_per_client: u32,
    pub connects_per_minute: u32,
    pub max_handshakes: usize,
    pub mints_per_minute: u32,
    pub frames_per_s: u32,
    pub frame_burst: u32,
    pub hello_timeout: Duration,
    pub header_timeout: Duration,
    pub send_timeout: Duration,
    pub history: usize,
    pub redis_timeout: Duration,
    pub chat_max_chars: usize,
    pub chat_rate_per_min: u32,
    pub chat_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            trusted_proxies: TrustedProxies::none(),
            allowed_origins: Vec::new(),
            connections_per_client: 1000,
            connects_per_minute: 1200,
            max_handshakes: 2048,
            mints_per_minute: 30,
            frames_per_s: 10,
            frame_burst: 30,
            hello_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(5),
            history: 1024,
            redis_timeout: DEFAULT_OP_TIMEOUT,
            chat_max_chars: dropwire_core::chat::DEFAULT_MAX_CHARS,
            chat_rate_per_min: 20,
            chat_burst: 5,
        }
    }
}

/// `value` if it lies in `range`, else an error naming the flag.
fn within<T: PartialOrd + std::fmt::Display + Copy>(
    name: &'static str,
    value: T,
    lo: T,
    hi: T,
    unit: &str,
) -> Result<T, ConfigError> {
    if value < lo || value > hi {
        return Err(ConfigError::Invalid {
            name,
            message: format!("{value} is out of range: must be {lo}-{hi}{unit}"),
        });
    }
    Ok(value)
}

impl Limits {
    /// Flags and environment over the file's `[limits]` over the defaults.
    pub fn resolve(args: LimitArgs, file: Option<FileLimits>) -> Result<Limits, ConfigError> {
        let file = file.unwrap_or_default();
        let d = Limits::default();
        let trusted_proxies = match args.trusted_proxies.or(file.trusted_proxies) {
            Some(raw) => TrustedProxies::parse(&raw).map_err(|message| ConfigError::Invalid {
                name: "trusted-proxies",
                message,
            })?,
            None => d.trusted_proxies,
        };
        let allowed_origins = match args.allowed_origins.or(file.allowed_origins) {
            Some(raw) => parse_origins(&raw).map_err(|message| ConfigError::Invalid {
                name: "allowed-origins",
                message,
            })?,
            None => d.allowed_origins,
        };
        let per_client = args.connections_per_client.or(file.connections_per_client);
        let per_minute = args.connects_per_minute.or(file.connects_per_minute);
        let pick = |a: Option<u64>, f: Option<u64>, d: u64| a.or(f).unwrap_or(d);
        let secs = |d: Duration| d.as_secs();
        let frames_per_s = args.frames_per_s.or(file.frames_per_s);
        let frames_per_s = within(
            "frames-per-s",
            frames_per_s.unwrap_or(d.frames_per_s),
            1,
            1000,
            "",
        )?;
        let frame_burst = args
            .frame_burst
            .or(file.frame_burst)
            .unwrap_or(d.frame_burst.max(frames_per_s));
        let hello = pick(
            args.hello_timeout_s,
            file.hello_timeout_s,
            secs(d.hello_timeout),
        );
        let header = pick(
            args.header_timeout_s,
            file.header_timeout_s,
            secs(d.header_timeout),
        );
        let send = pick(
            args.send_timeout_s,
            file.send_timeout_s,
            secs(d.send_timeout),
        );
        let redis_ms = pick(
            args.redis_timeout_ms,
            file.redis_timeout_ms,
            u64::try_from(d.redis_timeout.as_millis()).unwrap_or(u64::MAX),
        );
        Ok(Limits {
            trusted_proxies,
            allowed_origins,
            connections_per_client: within(
                "connections-per-client",
                per_client.unwrap_or(d.connections_per_client),
                1,
                1_000_000,
                "",
            )?,
            connects_per_minute: within(
                "connects-per-minute",
                per_minute.unwrap_or(d.connects_per_minute),
                1,
                1_000_000,
                " a minute",
            )?,
            mints_per_minute: within(
                "mints-per-minute",
                args.mints_per_minute
                    .or(file.mints_per_minute)
                    .unwrap_or(d.mints_per_minute),
                1,
                1_000_000,
                " a minute",
            )?,
            max_handshakes: within(
                "max-handshakes",
                args.max_handshakes
                    .or(file.max_handshakes)
                    .unwrap_or(d.max_handshakes),
                1,
                1_000_000,
                "",
            )?,
            frames_per_s,
            frame_burst: within(
                "frame-burst",
                frame_burst,
                frames_per_s,
                10_000,
                " (at least --frames-per-s)",
            )?,
            hello_timeout: Duration::from_secs(within("hello-timeout-s", hello, 1, 300, " s")?),
            header_timeout: Duration::from_secs(within("header-timeout-s", header, 1, 600, " s")?),
            send_timeout: Duration::from_secs(within("send-timeout-s", send, 1, 120, " s")?),
            history: within(
                "history",
                args.history.or(file.history).unwrap_or(d.history),
                16,
                100_000,
                " broadcasts",
            )?,
            redis_timeout: Duration::from_millis(within(
                "redis-timeout-ms",
                redis_ms,
                10,
                60_000,
                " ms",
            )?),
            chat_max_chars: within(
                "chat-max-chars",
                args.chat_max_chars
                    .or(file.chat_max_chars)
                    .unwrap_or(d.chat_max_chars),
                1,
                4096,
                " characters",
            )?,
            chat_rate_per_min: within(
                "chat-rate-per-min",
                args.chat_rate_per_min
                    .or(file.chat_rate_per_min)
                    .unwrap_or(d.chat_rate_per_min),
                1,
                6000,
                " a minute",
            )?,
            chat_burst: within(
                "chat-burst",
                args.chat_burst.or(file.chat_burst).unwrap_or(d.chat_burst),
                1,
                1000,
                "",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        assert_eq!(
            Limits::resolve(LimitArgs::default(), None).unwrap(),
            Limits::default()
        );
        let file: FileLimits = toml::from_str(
            "mints_per_minute = 600\nhistory = 4096\ntrusted_proxies = \"10.0.0.0/8\"",
        )
        .unwrap();
        let args = LimitArgs {
            mints_per_minute: Some(1200),
            ..Default::default()
        };
        let l = Limits::resolve(args, Some(file)).unwrap();
        assert_eq!(l.mints_per_minute, 1200);
        assert_eq!(l.history, 4096);
        assert!(l.trusted_proxies.trusts("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn out_of_range_values_name_the_flag() {
        for (args, flag) in [
            (
                LimitArgs {
                    frames_per_s: Some(0),
                    ..Default::default()
                },
                "frames-per-s",
            ),
            (
                LimitArgs {
                    frame_burst: Some(5),
                    ..Default::default()
                },
                "frame-burst",
            ),
            (
                LimitArgs {
                    hello_timeout_s: Some(0),
                    ..Default::default()
                },
                "hello-timeout-s",
            ),
            (
                LimitArgs {
                    history: Some(3),
                    ..Default::default()
                },
                "history",
            ),
            (
                LimitArgs {
                    redis_timeout_ms: Some(5),
                    ..Default::default()
                },
                "redis-timeout-ms",
            ),
            (
                LimitArgs {
                    trusted_proxies: Some("nginx".into()),
                    ..Default::default()
                },
                "trusted-proxies",
            ),
            (
                LimitArgs {
                    chat_max_chars: Some(0),
                    ..Default::default()
                },
                "chat-max-chars",
            ),
            (
                LimitArgs {
                    chat_rate_per_min: Some(0),
                    ..Default::default()
                },
                "chat-rate-per-min",
            ),
            (
                LimitArgs {
                    chat_burst: Some(1001),
                    ..Default::default()
                },
                "chat-burst",
            ),
        ] {
            let err = Limits::resolve(args, None).unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let bad: Result<FileLimits, _> = toml::from_str("mints = 3");
        assert!(bad.is_err(), "unknown keys in [limits] are refused");
    }
}
