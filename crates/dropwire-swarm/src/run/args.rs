//! The command line of `dropwire-swarm run`: the server, the viewers, the measured
//! broadcasts and claims, the chat load, and the hub node to kill mid-run.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The server's base URL.
    #[arg(long, env = "DW_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (drop control, and bulk viewer tokens).
    #[arg(
        long,
        env = "DW_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub admin_token: String,
    /// Viewers this process connects.
    #[arg(long, env = "DW_VIEWERS", default_value_t = 1000)]
    pub viewers: usize,
    /// Every viewer gets a token and claims the moment the reveal reaches it.
    #[arg(long)]
    pub claim: bool,
    /// Units of the drop's one SKU.
    #[arg(long, default_value_t = 50)]
    pub stock: u32,
    /// The SKU's fair-start window (ms, 0-60000; 0: off): claims in it are entered in a
    /// draw and answered when it is held, so claim latencies include the window.
    #[arg(long, default_value_t = 0)]
    pub fair_start_ms: u32,
    /// Measured broadcasts (ad-hoc cues), fired one at a time.
    #[arg(long, default_value_t = 20)]
    pub broadcasts: usize,
    /// Pause after each broadcast has reached every viewer, in ms.
    #[arg(long, default_value_t = 100)]
    pub gap_ms: u64,
    /// Chat load: this many chat messages a second in all, sent by `--chatters` signed-in
    /// viewers while the measured broadcasts run (0: no chat).
    #[arg(long, default_value_t = 0.0)]
    pub chat_per_s: f64,
    /// How many of the viewers chat (they get tokens); each sends every chatters/rate
    /// seconds. The default keeps 50 a second at 12 a minute per viewer, under the hub's
    /// per-viewer rate (20 a minute).
    #[arg(long, default_value_t = 250)]
    pub chatters: usize,
    /// Where to write the JSON report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Create the drop with this id (default `swarm-<unix ms>`).
    #[arg(long)]
    pub drop_id: Option<String>,
    /// Watch another swarm process's drop instead of creating one; leaves when it closes.
    #[arg(long, conflicts_with = "drop_id")]
    pub join: Option<String>,
    /// Before broadcasting, wait until the server counts this many viewers (every process's).
    #[arg(long)]
    pub expect_viewers: Option<u64>,
    /// The server's process id, for RSS and CPU time (found from the port when local).
    /// Several, comma-separated (every hub node of a multi-node run): their RSS and CPU
    /// time are summed, so CPU per delivered message is over all of them.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Loopback source addresses to spread the sockets over (127.0.0.1..N); 0 lets the kernel pick.
    #[arg(long, default_value_t = 64)]
    pub source_ips: u8,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,
    /// Gives up on the whole run after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// A viewer whose connection the server ends early connects again with `since` (and
    /// asks an unanswered claim again, same rid), as the overlay does
    #[arg(long)]
    pub resume: bool,
    /// Resume on this node instead (http://HOST:PORT of another hub on the same Redis):
    /// the node the viewers were on is gone
    #[arg(long, requires = "resume")]
    pub resume_server: Option<String>,
    /// Kill this process (SIGKILL) during the run, at `--kill-at`: a hub node, to see its
    /// viewers resume on another (use with `--resume`)
    #[arg(long, requires = "kill_at")]
    pub kill_pid: Option<u32>,
    /// When to kill `--kill-pid`: right after firing broadcast N (0-based), or `reveal`
    /// (right after the reveal, while the claims are in flight)
    #[arg(long, requires = "kill_pid", value_parser = parse_kill_at)]
    pub kill_at: Option<KillAt>,
}

/// The moment of `--kill-at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillAt {
    Broadcast(usize),
    Reveal,
}

fn parse_kill_at(s: &str) -> Result<KillAt, String> {
    match s {
        "reveal" => Ok(KillAt::Reveal),
        n => n
            .parse()
            .map(KillAt::Broadcast)
            .map_err(|_| format!("expected a broadcast number or `reveal`, not {n:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_at_is_a_broadcast_number_or_the_reveal() {
        assert_eq!(parse_kill_at("reveal"), Ok(KillAt::Reveal));
        assert_eq!(parse_kill_at("3"), Ok(KillAt::Broadcast(3)));
        assert!(parse_kill_at("soon").unwrap_err().contains("reveal"));
    }
}
