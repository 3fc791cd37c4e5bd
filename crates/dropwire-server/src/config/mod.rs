//! Configuration: defaults ← file (`--config`, TOML) ← `DROPWIRE_*` environment ← flags.
//! Anything unknown or invalid stops start-up with a message that names it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use dropwire_store::DEFAULT_RETENTION;
use dropwire_store::redis::parse_nodes;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::healthcheck::HealthcheckArgs;
use crate::webhooks::{WebhookSettings, parse_schedule};

mod env;
mod journal;
mod limits;

pub use journal::{FileJournal, JournalArgs, JournalSettings};
pub use limits::{FileLimits, LimitArgs, Limits};

pub use env::{
    ENV_PREFIX, LOG_ENV, UnknownVar, known_env, log_filter, nearest_known, unknown_env_message,
    unknown_vars,
};

#[derive(Debug, Parser)]
#[command(
    name = "dropwire",
    version,
    about = "The live drop hub: timed reveals, flash coupons and atomic claims for thousands of viewers."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub.
    Serve(Box<ServeArgs>),
    /// Ask a running hub whether it is ready (`GET /readyz`): exit 0 if so, 1 with the
    /// reason on stderr if not. For container health checks (the image has no curl).
    Healthcheck(HealthcheckArgs),
}

/// Flags of `dropwire serve`; each has a `DROPWIRE_*` twin.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "DROPWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "DROPWIRE_BIND")]
    pub bind: Option<String>,
    /// Where the embedded store keeps its journal and the admin token [default: ./dropwire-data].
    #[arg(long, env = "DROPWIRE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The streamer's admin token, or several separated by commas, all accepted (a
    /// rotation: `new,old`) [default: generated once and kept in the data dir].
    #[arg(long, env = "DROPWIRE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The secret viewer tokens and follow-up coupon codes are derived from; set it (to the
    /// first admin token's value, to keep those issued) before rotating admin tokens
    /// [default: the first admin token].
    #[arg(long, env = "DROPWIRE_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,
    /// Shared secret for HS256 viewer JWTs signed by a host platform.
    #[arg(long, env = "DROPWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Keep state in Redis instead of the embedded store (redis://host:port/db; with
    /// --redis-cluster true, one or more cluster nodes separated by commas).
    #[arg(long, env = "DROPWIRE_REDIS_URL")]
    pub redis: Option<String>,
    /// With --redis: the URLs are nodes of a Redis Cluster [default: false].
    #[arg(long, env = "DROPWIRE_REDIS_CLUSTER")]
    pub redis_cluster: Option<bool>,
    /// The funnel ledger: sqlite:PATH, postgres://USER@HOST/DB (shared by many hub nodes),
    /// or off [default: sqlite:<data-dir>/ledger.sqlite3].
    #[arg(long, env = "DROPWIRE_LEDGER_URL")]
    pub ledger: Option<String>,
    /// Let webhook URLs reach loopback, private and link-local addresses [default: false].
    #[arg(long, env = "DROPWIRE_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: Option<bool>,
    /// Waits before each webhook attempt, seconds separated by commas; a message gets one
    /// try per entry [default: 0,5,300,1800,7200,18000,36000,36000].
    #[arg(long, env = "DROPWIRE_WEBHOOK_RETRY_SCHEDULE")]
    pub webhook_retry_schedule: Option<String>,
    /// Seconds one webhook request may take [default: 15].
    #[arg(long, env = "DROPWIRE_WEBHOOK_TIMEOUT_S")]
    pub webhook_timeout_s: Option<u64>,
    /// Webhook deliveries in flight per endpoint at most [default: 4].
    #[arg(long, env = "DROPWIRE_WEBHOOK_CONCURRENCY")]
    pub webhook_concurrency: Option<usize>,
    /// With --redis: replicas each granted claim must reach before it is acknowledged [default: 0].
    #[arg(long, env = "DROPWIRE_REDIS_WAIT_REPLICAS")]
    pub redis_wait_replicas: Option<u32>,
    /// With --redis: days the keys of a drop are kept once it is closed and its holds are
    /// settled, then they expire (0: kept for ever); the funnel ledger keeps its facts [default: 90].
    #[arg(long, env = "DROPWIRE_REDIS_RETENTION_DAYS")]
    pub redis_retention_days: Option<u32>,
    /// Seconds a closed drop's hub stays loaded after its last viewer or request, before
    /// the node lets it go (a later request loads it again) [default: 60].
    #[arg(long, env = "DROPWIRE_HUB_IDLE_GRACE_S")]
    pub hub_idle_grace_s: Option<u64>,
    /// Public base URL printed for the panel and used in copyable links [default: http://<bind>].
    #[arg(long, env = "DROPWIRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How many broadcasts a viewer may fall behind before it is dropped as slow [default: 256].
    #[arg(long, env = "DROPWIRE_VIEWER_QUEUE")]
    pub viewer_queue: Option<usize>,
    /// Kernel send buffer per viewer socket, bytes [default: 65536].
    #[arg(long, env = "DROPWIRE_SOCKET_SEND_BUFFER")]
    pub socket_send_buffer: Option<usize>,
    /// fsync the journal before acknowledging a claim [default: true].
    #[arg(long, env = "DROPWIRE_FSYNC")]
    pub fsync: Option<bool>,
    /// Seconds to drain connections on shutdown [default: 10].
    #[arg(long, env = "DROPWIRE_SHUTDOWN_GRACE_S")]
    pub shutdown_grace_s: Option<u64>,
    /// Create and start a demo drop (`demo`, from examples/speckled-mugs.json) so the
    /// overlay printed at start shows a live drop at once; `--demo` alone means true
    /// [default: false].
    #[arg(long, env = "DROPWIRE_DEMO", num_args = 0..=1, default_missing_value = "true")]
    pub demo: Option<bool>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub journal: JournalArgs,
}

/// The same settings, as a config file holds them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    admin_token: Option<String>,
    signing_secret: Option<String>,
    jwt_secret: Option<String>,
    redis: Option<String>,
    redis_cluster: Option<bool>,
    redis_wait_replicas: Option<u32>,
    redis_retention_days: Option<u32>,
    hub_idle_grace_s: Option<u64>,
    ledger: Option<String>,
    webhook_allow_private: Option<bool>,
    webhook_retry_schedule: Option<String>,
    webhook_timeout_s: Option<u64>,
    webhook_concurrency: Option<usize>,
    public_url: Option<String>,
    viewer_queue: Option<usize>,
    socket_send_buffer: Option<usize>,
    fsync: Option<bool>,
    shutdown_grace_s: Option<u64>,
    demo: Option<bool>,
    limits: Option<FileLimits>,
    journal: Option<FileJournal>,
}

impl Config {
    /// How long a retired drop's Redis keys are kept (`None`: for ever).
    pub fn redis_retention(&self) -> Option<std::time::Duration> {
        (self.redis_retention_days > 0)
            .then(|| std::time::Duration::from_secs(u64::from(self.redis_retention_days) * 86_400))
    }
}

/// Where the funnel ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerSetting {
    /// SQLite in the data dir (`ledger.sqlite3`).
    Embedded,
    /// A database URL: `sqlite:PATH` or `postgres://…`.
    Url(String),
    /// No ledger: the live hub alone (the funnel routes answer 503 `ledger_off`).
    Off,
}

impl LedgerSetting {
    fn parse(raw: &str) -> Result<LedgerSetting, ConfigError> {
        let raw = raw.trim();
        if raw == "off" {
            Ok(LedgerSetting::Off)
        } else if raw.starts_with("sqlite:")
            || raw.starts_with("postgres://")
            || raw.starts_with("postgresql://")
        {
            Ok(LedgerSetting::Url(raw.to_owned()))
        } else {
            Err(ConfigError::Invalid {
                name: "ledger",
                message: format!("{raw:?} is not sqlite:PATH, postgres://USER@HOST/DB or off"),
            })
        }
    }

    /// The URL to open, if any.
    pub fn url(&self, data_dir: &Path) -> Option<String> {
        match self {
            LedgerSetting::Embedded => Some(format!(
                "sqlite:{}",
                data_dir.join("ledger.sqlite3").display()
            )),
            LedgerSetting::Url(url) => Some(url.clone()),
            LedgerSetting::Off => None,
        }
    }
}

/// The settings in force, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// The admin tokens given (the first signs unless `signing_secret` is set).
    pub admin_tokens: Vec<String>,
    pub signing_secret: Option<String>,
    pub jwt_secret: Option<String>,
    /// `--redis` as given (for messages).
    pub redis: Option<String>,
    /// The nodes `--redis` names, parsed once ([`parse_nodes`]); empty without Redis.
    pub redis_nodes: Vec<String>,
    pub redis_cluster: bool,
    pub redis_wait_replicas: u32,
    /// Days a retired drop's Redis keys are kept (0: for ever).
    pub redis_retention_days: u32,
    /// Set explicitly (flag, environment or file), not the default.
    redis_retention_set: bool,
    pub hub_idle_grace_s: u64,
    pub ledger: LedgerSetting,
    pub webhooks: WebhookSettings,
    pub public_url: Option<String>,
    pub viewer_queue: usize,
    pub socket_send_buffer: usize,
    pub fsync: bool,
    pub shutdown_grace_s: u64,
    /// Create and start the demo drop after start-up.
    pub demo: bool,
    pub limits: Limits,
    /// When the embedded store snapshots and truncates its journal.
    pub journal: JournalSettings,
}

/// The one table of defaults (with [`Limits`]', [`JournalSettings`]' and
/// [`WebhookSettings`]' own): [`Options::new`](crate::app::Options::new) takes its values
/// from here, and a test checks that the flags' `[default: …]` and docs/operations.md say
/// the same.
impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("dropwire-data"),
            admin_tokens: Vec::new(),
            signing_secret: None,
            jwt_secret: None,
            redis: None,
            redis_nodes: Vec::new(),
            redis_cluster: false,
            redis_wait_replicas: 0,
            redis_retention_days: u32::try_from(DEFAULT_RETENTION.as_secs() / 86_400)
                .unwrap_or(u32::MAX),
            redis_retention_set: false,
            hub_idle_grace_s: 60,
            ledger: LedgerSetting::Embedded,
            webhooks: WebhookSettings::default(),
            public_url: None,
            viewer_queue: 256,
            socket_send_buffer: 64 * 1024,
            fsync: true,
            shutdown_grace_s: 10,
            demo: false,
            limits: Limits::default(),
            journal: JournalSettings::default(),
        }
    }
}

impl Config {
    /// Resolves `args` (flags and environment, already merged by clap) over the file over the defaults.
    pub fn resolve(args: ServeArgs) -> Result<Config, ConfigError> {
        env::refuse_unknown_env()?;
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let bind = args.bind.or(file.bind);
        let bind = match bind {
            Some(b) => b.parse().map_err(|_| ConfigError::Invalid {
                name: "bind",
                message: format!("{b:?} is not an address like 127.0.0.1:8080"),
            })?,
            None => d.bind,
        };
        let redis = args.redis.or(file.redis);
        let cfg = Config {
            bind,
            data_dir: args.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            admin_tokens: args
                .admin_token
                .or(file.admin_token)
                .map(|t| t.split(',').map(|t| t.trim().to_owned()).collect())
                .unwrap_or_default(),
            signing_secret: args.signing_secret.or(file.signing_secret),
            jwt_secret: args.jwt_secret.or(file.jwt_secret),
            redis_nodes: match &redis {
                Some(list) => parse_nodes(list).map_err(|message| ConfigError::Invalid {
                    name: "redis",
                    message: message.into(),
                })?,
                None => Vec::new(),
            },
            redis,
            redis_cluster: args
                .redis_cluster
                .or(file.redis_cluster)
                .unwrap_or(d.redis_cluster),
            redis_wait_replicas: args
                .redis_wait_replicas
                .or(file.redis_wait_replicas)
                .unwrap_or(d.redis_wait_replicas),
            redis_retention_set: args.redis_retention_days.is_some()
                || file.redis_retention_days.is_some(),
            redis_retention_days: args
                .redis_retention_days
                .or(file.redis_retention_days)
                .unwrap_or(d.redis_retention_days),
            hub_idle_grace_s: args
                .hub_idle_grace_s
                .or(file.hub_idle_grace_s)
                .unwrap_or(d.hub_idle_grace_s),
            ledger: match args.ledger.or(file.ledger) {
                Some(raw) => LedgerSetting::parse(&raw)?,
                None => d.ledger,
            },
            webhooks: webhook_settings(
                &d.webhooks,
                args.webhook_allow_private.or(file.webhook_allow_private),
                args.webhook_retry_schedule.or(file.webhook_retry_schedule),
                args.webhook_timeout_s.or(file.webhook_timeout_s),
                args.webhook_concurrency.or(file.webhook_concurrency),
            )?,
            public_url: args.public_url.or(file.public_url),
            viewer_queue: args
                .viewer_queue
                .or(file.viewer_queue)
                .unwrap_or(d.viewer_queue),
            socket_send_buffer: args
                .socket_send_buffer
                .or(file.socket_send_buffer)
                .unwrap_or(d.socket_send_buffer),
            fsync: args.fsync.or(file.fsync).unwrap_or(d.fsync),
            shutdown_grace_s: args
                .shutdown_grace_s
                .or(file.shutdown_grace_s)
                .unwrap_or(d.shutdown_grace_s),
            demo: args.demo.or(file.demo).unwrap_or(d.demo),
            limits: Limits::resolve(args.limits, file.limits)?,
            journal: JournalSettings::resolve(args.journal, file.journal)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name: &'static str, message: &str| {
            Err(ConfigError::Invalid {
                name,
                message: message.into(),
            })
        };
        for t in &self.admin_tokens {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid(
                    "admin-token",
                    "each token must be at least 16 characters with no spaces",
                );
            }
        }
        if self.signing_secret.as_ref().is_some_and(|s| s.len() < 16) {
            return invalid("signing-secret", "must be at least 16 characters");
        }
        if let Some(s) = &self.jwt_secret
            && s.len() < 32
        {
            return invalid("jwt-secret", "must be at least 32 bytes");
        }
        if self.redis_nodes.len() > 1 && !self.redis_cluster {
            return invalid(
                "redis",
                "several URLs are a cluster: add --redis-cluster true",
            );
        }
        if self.redis_cluster && self.redis.is_none() {
            return invalid("redis-cluster", "only applies with --redis");
        }
        if self.redis_wait_replicas > 16 {
            return invalid("redis-wait-replicas", "must be 0-16");
        }
        if self.redis_wait_replicas > 0 && self.redis.is_none() {
            return invalid("redis-wait-replicas", "only applies with --redis");
        }
        if self.journal.set && self.redis.is_some() {
            return invalid(
                "snapshot-every-records",
                "--snapshot-every-records and --snapshot-every-mb apply to the embedded store, not with --redis",
            );
        }
        if self.redis_retention_days > 36_500 {
            return invalid(
                "redis-retention-days",
                "must be 0-36500 days (0: keep for ever)",
            );
        }
        if self.redis_retention_set && self.redis.is_none() {
            return invalid("redis-retention-days", "only applies with --redis");
        }
        if !(1..=86_400).contains(&self.hub_idle_grace_s) {
            return invalid("hub-idle-grace-s", "must be 1-86400 seconds");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("public-url", "must start with http:// or https://");
        }
        if !(8..=65_536).contains(&self.viewer_queue) {
            return invalid("viewer-queue", "must be 8-65536");
        }
        if !(4096..=16 << 20).contains(&self.socket_send_buffer) {
            return invalid("socket-send-buffer", "must be 4096-16777216 bytes");
        }
        if self.shutdown_grace_s > 600 {
            return invalid("shutdown-grace-s", "must be at most 600");
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data-dir", "must not be empty");
        }
        Ok(())
    }
}

fn webhook_settings(
    d: &WebhookSettings,
    allow_private: Option<bool>,
    schedule: Option<String>,
    timeout_s: Option<u64>,
    concurrency: Option<usize>,
) -> Result<WebhookSettings, ConfigError> {
    let invalid = |name: &'static str, message: String| ConfigError::Invalid { name, message };
    let schedule = match schedule {
        Some(raw) => parse_schedule(&raw).map_err(|m| invalid("webhook-retry-schedule", m))?,
        None => d.schedule.clone(),
    };
    let timeout_s = timeout_s.unwrap_or(d.timeout.as_secs());
    if !(1..=120).contains(&timeout_s) {
        return Err(invalid("webhook-timeout-s", "must be 1-120 seconds".into()));
    }
    let concurrency = concurrency.unwrap_or(d.concurrency);
    if !(1..=64).contains(&concurrency) {
        return Err(invalid("webhook-concurrency", "must be 1-64".into()));
    }
    Ok(WebhookSettings {
        schedule,
        timeout: std::time::Duration::from_secs(timeout_s),
        concurrency,
        allow_private: allow_private.unwrap_or(d.allow_private),
        ..d.clone()
    })
}

/// The `bind` a config file sets, if any (for `dropwire healthcheck`, which runs beside
/// `dropwire serve` in the same environment).
pub fn bind_in_file(path: &Path) -> Result<Option<String>, ConfigError> {
    read_file(path).map(|file| file.bind)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
