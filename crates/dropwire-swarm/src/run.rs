//! One swarm run: create and start a drop, connect the viewers, fire the measured
//! broadcasts one at a time, optionally reveal and let every viewer claim at once, close,
//! and gather what every viewer saw into a [`Report`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::frame::Kind;
use crate::procfs;
use crate::report::{BroadcastRow, Latency, Report};
use crate::target::Target;
use crate::viewer::{self, ClaimAnswer, Outcome, Plan, Progress};

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
    /// Measured broadcasts (ad-hoc cues), fired one at a time.
    #[arg(long, default_value_t = 20)]
    pub broadcasts: usize,
    /// Pause after each broadcast has reached every viewer, in ms.
    #[arg(long, default_value_t = 100)]
    pub gap_ms: u64,
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

/// SIGKILL, by the `kill` command (this crate has no unsafe code and no libc binding).
fn kill(pid: u32) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill -KILL {pid} failed: {status}");
    }
    Ok(())
}

/// Reads the server's figures when it runs on this machine: summed over its processes
/// (several hub nodes), none when any of them cannot be read.
#[derive(Debug, Clone)]
struct Probe(Vec<u32>);

impl Probe {
    fn sum(&self, read: fn(u32) -> Option<u64>) -> Option<u64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().map(|&pid| read(pid)).sum()
    }
    fn rss(&self) -> Option<u64> {
        self.sum(procfs::rss_kib)
    }
    fn cpu_us(&self) -> Option<u64> {
        self.sum(procfs::cpu_us)
    }
}

/// What else the machine did while the broadcasts ran: a busy neighbour shows up here.
struct Window {
    start: Instant,
    machine: Option<procfs::MachineCpu>,
    me: Option<u64>,
}

impl Window {
    fn open() -> Self {
        Window {
            start: Instant::now(),
            machine: procfs::machine_cpu(),
            me: procfs::cpu_us(std::process::id()),
        }
    }

    fn close(self, server_ms: Option<f64>) -> Meanwhile {
        let mut m = Meanwhile {
            window_s: Some(self.start.elapsed().as_secs_f64()),
            ..Meanwhile::default()
        };
        let (Some(a), Some(b)) = (self.machine, procfs::machine_cpu()) else {
            return m;
        };
        let ms = |x: u64, y: u64| y.saturating_sub(x) as f64 / 1000.0;
        m.swarm_ms = cpu_ms(self.me, procfs::cpu_us(std::process::id()));
        m.irq_ms = Some(ms(a.irq_us, b.irq_us));
        m.steal_ms = Some(ms(a.steal_us, b.steal_us));
        if let (Some(me), Some(server)) = (m.swarm_ms, server_ms) {
            m.other_ms = Some((ms(a.tasks_us, b.tasks_us) - me - server).max(0.0));
        }
        m
    }
}

#[derive(Debug, Default)]
struct Meanwhile {
    window_s: Option<f64>,
    swarm_ms: Option<f64>,
    other_ms: Option<f64>,
    irq_ms: Option<f64>,
    steal_ms: Option<f64>,
}

fn cpu_ms(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(b?.saturating_sub(a?) as f64 / 1000.0)
}

fn resolve(base: &str) -> anyhow::Result<SocketAddr> {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("ws://"))
        .with_context(|| format!("--server {base:?}: expected http://HOST:PORT"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport
        .to_socket_addrs()
        .with_context(|| format!("--server {base:?}: cannot resolve {hostport}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("--server {base:?}: no IPv4 address"))
}

async fn wait_until(deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while !ok() {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

pub async fn run(args: RunArgs, quiet: bool) -> anyhow::Result<Report> {
    let say = |msg: String| {
        if !quiet {
            eprintln!("[swarm] {msg}");
        }
    };
    let started = Instant::now();
    let overall = Duration::from_secs(args.timeout_s);
    let server = resolve(&args.server)?;
    if let Some((soft, _)) = procfs::open_files_limit() {
        if (soft as usize) < args.viewers + 64 {
            bail!(
                "this process may open {soft} files, too few for {} viewers: raise it with `ulimit -n` (or split the viewers over several processes)",
                args.viewers
            );
        }
    }
    let mut target = Target::new(&args.server, &args.admin_token)?;
    let probe = Probe(if args.server_pid.is_empty() {
        server
            .ip()
            .is_loopback()
            .then(|| procfs::pid_listening_on(server.port()))
            .flatten()
            .into_iter()
            .collect()
    } else {
        args.server_pid.clone()
    });
    let coordinator = args.join.is_none();
    let mut fired_us = Vec::with_capacity(args.broadcasts);
    let mut report = Report {
        server: args.server.clone(),
        role: if coordinator { "coordinator" } else { "join" }.into(),
        processes: 1,
        started_ms: viewer::now_us() / 1000,
        viewers: args.viewers as u64,
        server_pid: probe.0.first().copied(),
        ..Report::default()
    };

    // The drop.
    let (drop_id, floor) = match &args.join {
        Some(id) => {
            target.wait_for_drop(id, Duration::from_secs(60)).await?;
            (id.clone(), false)
        }
        None => {
            let id = args
                .drop_id
                .clone()
                .unwrap_or_else(|| format!("swarm-{}", viewer::now_us() / 1000));
            target.create_drop(&id, args.stock).await?
        }
    };
    report.target = if floor { "floor" } else { "dropwire" }.into();
    report.drop_id = Some(drop_id.clone());
    say(format!(
        "{} drop {drop_id} at {}",
        report.target, args.server
    ));

    // Tokens, when the viewers will claim.
    let tokens = if args.claim {
        let t0 = Instant::now();
        let tokens = mint_all(&target, args.viewers, &drop_id).await?;
        report.mint_rate_per_s = Some(args.viewers as f64 / t0.elapsed().as_secs_f64().max(1e-6));
        say(format!(
            "minted {} tokens in {:.2} s",
            tokens.len(),
            t0.elapsed().as_secs_f64()
        ));
        tokens.into_iter().map(Some).collect()
    } else {
        vec![None; args.viewers]
    };

    report.server_rss_base_kib = probe.rss();
    let mut peak = report.server_rss_base_kib;
    let mut note_peak = |rss: Option<u64>| {
        peak = peak.max(rss);
    };
    if coordinator {
        target.start(&drop_id).await?;
    }

    // Connect everyone.
    let progress = Arc::new(Progress::default());
    let (done_tx, done_rx) = watch::channel(false);
    let sources = if server.ip().is_loopback() && args.source_ips > 0 {
        (1..=args.source_ips)
            .map(|x| IpAddr::V4(Ipv4Addr::new(127, 0, 0, x)))
            .collect()
    } else {
        Vec::new()
    };
    let plan = Arc::new(Plan {
        ws_url: target.ws_url(&drop_id),
        server,
        sources,
        progress: Arc::clone(&progress),
        connect_slots: Arc::new(Semaphore::new(args.connect_concurrency.max(1))),
        done: done_rx,
        resume: args.resume,
        resume_to: match &args.resume_server {
            Some(url) => Some((
                Target::new(url, &args.admin_token)?.ws_url(&drop_id),
                resolve(url)?,
            )),
            None => None,
        },
    });
    let killed_us = std::cell::Cell::new(None::<u64>);
    let kill_now = |at: KillAt| -> anyhow::Result<()> {
        if let (Some(pid), Some(when)) = (args.kill_pid, args.kill_at)
            && when == at
        {
            kill(pid)?;
            killed_us.set(Some(viewer::now_us()));
            say(format!("killed process {pid} at {at:?}"));
        }
        Ok(())
    };
    let cpu_before_connect = probe.cpu_us();
    let t_connect = Instant::now();
    let mut viewers = JoinSet::new();
    for (idx, token) in tokens.into_iter().enumerate() {
        viewers.spawn(viewer::run(Arc::clone(&plan), idx, token));
    }
    let n = args.viewers as u64;
    let all_in = || {
        progress.connected.load(Ordering::Acquire) + progress.failed.load(Ordering::Acquire) >= n
    };
    wait_until(overall, all_in).await;
    report.connect_s = t_connect.elapsed().as_secs_f64();
    let connected = progress.connected.load(Ordering::Acquire);
    say(format!(
        "{connected} of {n} connected in {:.2} s ({} failed)",
        report.connect_s,
        progress.failed.load(Ordering::Acquire)
    ));

    if coordinator {
        // Let the server count everyone (its viewer count is coalesced) and go quiet.
        let expect = args.expect_viewers.unwrap_or(connected);
        let t_count = Instant::now();
        loop {
            let now = target
                .stats(&drop_id)
                .await
                .map(|s| s.viewers_now)
                .unwrap_or(0);
            if now >= expect {
                break;
            }
            if t_count.elapsed() > Duration::from_secs(120) {
                say(format!(
                    "the server counts {now} viewers, not {expect}; going on"
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        report.server_cpu_connect_ms = cpu_ms(cpu_before_connect, probe.cpu_us());
        report.server_rss_kib = probe.rss();
        note_peak(report.server_rss_kib);

        // The measured broadcasts, one at a time.
        let cpu0 = probe.cpu_us();
        let window = Window::open();
        for b in 0..args.broadcasts {
            let live = progress.connected.load(Ordering::Acquire)
                - progress.dropped.load(Ordering::Acquire);
            let before = progress.bench_frames.load(Ordering::Acquire);
            fired_us.push(viewer::now_us());
            target.fire_bench(&drop_id, b).await?;
            kill_now(KillAt::Broadcast(b))?;
            if let (Some(_), Some(url)) = (killed_us.get(), &args.resume_server) {
                // The node we drove the drop through is gone: go on through the other.
                target = Target::new(url, &args.admin_token)?;
            }
            let reached = wait_until(Duration::from_secs(10), || {
                progress.bench_frames.load(Ordering::Acquire) >= before + live
            })
            .await;
            if !reached {
                say(format!(
                    "broadcast {b} reached {} of {live} viewers within 10 s",
                    progress.bench_frames.load(Ordering::Acquire) - before
                ));
            }
            if b + 1 < args.broadcasts {
                tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
            }
        }
        let cpu1 = probe.cpu_us();
        report.server_cpu_broadcast_ms = cpu_ms(cpu0, cpu1);
        let m = window.close(report.server_cpu_broadcast_ms);
        report.broadcast_window_s = m.window_s;
        report.swarm_cpu_broadcast_ms = m.swarm_ms;
        report.other_cpu_broadcast_ms = m.other_ms;
        report.steal_broadcast_ms = m.steal_ms;
        report.softirq_broadcast_ms = m.irq_ms;
        note_peak(probe.rss());

        if args.claim {
            let cpu0 = probe.cpu_us();
            let window = Window::open();
            target.fire_reveal(&drop_id).await?;
            kill_now(KillAt::Reveal)?;
            if let (Some(_), Some(url)) = (killed_us.get(), &args.resume_server) {
                // The node we drove the drop through is gone: go on through the other.
                target = Target::new(url, &args.admin_token)?;
            }
            let live = progress.connected.load(Ordering::Acquire)
                - progress.dropped.load(Ordering::Acquire);
            let answered = wait_until(Duration::from_secs(30), || {
                progress.claims_answered.load(Ordering::Acquire) >= live
            })
            .await;
            report.server_cpu_claims_ms = cpu_ms(cpu0, probe.cpu_us());
            let m = window.close(report.server_cpu_claims_ms);
            report.claims_window_s = m.window_s;
            report.other_cpu_claims_ms = m.other_ms;
            if !answered {
                say(format!(
                    "{} of {live} claims answered within 30 s",
                    progress.claims_answered.load(Ordering::Acquire)
                ));
            }
            note_peak(probe.rss());
        }
        if args.expect_viewers.is_some_and(|e| e > n) {
            // Other processes' viewers (maybe on other hub nodes) may still be receiving the
            // last broadcast: closing now would put the close on top of it.
            tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        }
        target.close(&drop_id).await?;
        if args.claim {
            let s = target.stats(&drop_id).await?;
            report.stock = Some(u64::from(args.stock));
            report.stock_left = s.stock_left;
            report.server_claims = Some(s.granted);
        }
        // Viewers leave when they see the drop close.
        wait_until(Duration::from_secs(10), || {
            progress.finished.load(Ordering::Acquire) >= n
        })
        .await;
    } else {
        let left = overall.saturating_sub(started.elapsed());
        wait_until(left, || progress.finished.load(Ordering::Acquire) >= n).await;
    }
    let _ = done_tx.send(true);
    let mut outcomes = Vec::with_capacity(args.viewers);
    while let Some(res) = viewers.join_next().await {
        outcomes.push(res.unwrap_or_default());
    }
    report.server_rss_peak_kib = peak;
    let last_recv = gather(&mut report, &outcomes);
    if let (Some(killed), Some(last)) = (
        killed_us.get(),
        outcomes.iter().filter_map(|o| o.resumed_us).max(),
    ) {
        report.resume_all_s = Some(last.saturating_sub(killed) as f64 / 1e6);
    }
    attach_fire_times(&mut report, &fired_us, &last_recv);
    report.duration_s = started.elapsed().as_secs_f64();
    report.finish();
    Ok(report)
}

/// Mints a token per viewer, 64 requests at a time.
async fn mint_all(target: &Target, n: usize, drop_id: &str) -> anyhow::Result<Vec<String>> {
    let slots = Arc::new(Semaphore::new(64));
    let mut set = JoinSet::new();
    for i in 0..n {
        let target = target.clone();
        let slots = Arc::clone(&slots);
        let handle = format!("{drop_id}-v{i}")
            .chars()
            .rev()
            .take(40)
            .collect::<String>();
        let handle: String = handle.chars().rev().collect();
        set.spawn(async move {
            let _slot = slots.acquire().await;
            (i, target.mint(&handle).await)
        });
    }
    let mut tokens = vec![String::new(); n];
    while let Some(res) = set.join_next().await {
        let (i, token) = res.context("a minting task failed")?;
        tokens[i] = token?;
    }
    Ok(tokens)
}

/// Folds every viewer's outcome into the report; returns each seq's last receive time (µs).
fn gather(report: &mut Report, outcomes: &[Outcome]) -> BTreeMap<u64, u64> {
    let mut cue = Latency::default();
    let mut claim = Latency::default();
    let mut rows: BTreeMap<u64, (Kind, u64, u64, u64)> = BTreeMap::new();
    for o in outcomes {
        if o.connected {
            report.connected += 1;
        }
        if let Some(e) = &o.connect_error {
            report.failed_connects += 1;
            *report.connect_errors.entry(e.clone()).or_default() += 1;
        }
        if let Some(r) = &o.dropped {
            report.dropped += 1;
            *report.drop_reasons.entry(r.clone()).or_default() += 1;
        }
        report.frames += o.frames;
        report.gaps += o.gaps;
        report.resumed += o.resumed;
        report.snapshot_gaps += o.snapshot_gaps;
        report.out_of_order += o.out_of_order;
        for s in &o.samples {
            let lat = s.recv_us.saturating_sub(s.ts_ms * 1000);
            if matches!(s.kind, Kind::BenchCue | Kind::Reveal | Kind::Cue) {
                cue.record(lat);
            }
            let row = rows.entry(s.seq).or_insert((s.kind, 0, 0, 0));
            row.1 += 1;
            row.2 = row.2.max(lat);
            row.3 = row.3.max(s.recv_us);
        }
        if o.claim_sent {
            report.claims_sent += 1;
        }
        match &o.claim {
            Some((ClaimAnswer::Ok, us)) => {
                report.claims_ok += 1;
                claim.record(*us);
            }
            Some((ClaimAnswer::Refused(r), us)) => {
                if r == "sold_out" {
                    report.claims_sold_out += 1;
                } else {
                    *report.claims_other.entry(r.clone()).or_default() += 1;
                }
                claim.record(*us);
            }
            None if o.claim_sent => report.claims_unanswered += 1,
            None => {}
        }
    }
    report.hist.cue_latency_us = cue.pairs();
    report.hist.claim_latency_us = claim.pairs();
    let last_recv = rows.iter().map(|(seq, r)| (*seq, r.3)).collect();
    report.per_broadcast = rows
        .into_iter()
        .map(|(seq, (kind, received, max_us, _))| BroadcastRow {
            seq,
            kind: kind.name().into(),
            received,
            max_ms: max_us as f64 / 1000.0,
            fire_to_last_ms: None,
        })
        .collect();
    last_recv
}

/// The n-th measured broadcast is the n-th `bench_cue` seq: pairs fire times with the
/// slowest viewer's receive time of each.
fn attach_fire_times(report: &mut Report, fired_us: &[u64], last_recv: &BTreeMap<u64, u64>) {
    let bench: Vec<&mut BroadcastRow> = report
        .per_broadcast
        .iter_mut()
        .filter(|r| r.kind == "bench_cue")
        .collect();
    if bench.len() != fired_us.len() {
        return;
    }
    for (row, fired) in bench.into_iter().zip(fired_us) {
        if let Some(recv) = last_recv.get(&row.seq) {
            row.fire_to_last_ms = Some(recv.saturating_sub(*fired) as f64 / 1000.0);
        }
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
