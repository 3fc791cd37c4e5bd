//! One swarm run: create and start a drop, connect the viewers, fire the measured
//! broadcasts one at a time (with `--chat-per-s`, while chatters talk), optionally reveal
//! and let every viewer claim at once, close, and gather what every viewer saw into a
//! [`Report`].
//!
//! - `args`: [`RunArgs`], the command line.
//! - `probe`: the server's RSS and CPU time, and the machine's meanwhile.
//! - `gather`: every viewer's outcome folded into the report.

mod args;
mod gather;
mod probe;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::chat::ChatPlan;
use crate::procfs;
use crate::report::Report;
use crate::target::Target;
use crate::viewer::{self, Plan, Progress};

use self::args::KillAt;
pub use self::args::RunArgs;
use self::gather::{attach_fire_times, gather};
use self::probe::{Probe, Window, cpu_ms};

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
    if let Some((soft, _)) = procfs::open_files_limit()
        && (soft as usize) < args.viewers + 64
    {
        bail!(
            "this process may open {soft} files, too few for {} viewers: raise it with `ulimit -n` (or split the viewers over several processes)",
            args.viewers
        );
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
            target
                .create_drop(&id, args.stock, args.fair_start_ms)
                .await?
        }
    };
    report.target = if floor { "floor" } else { "dropwire" }.into();
    report.drop_id = Some(drop_id.clone());
    say(format!(
        "{} drop {drop_id} at {}",
        report.target, args.server
    ));

    // Tokens, when the viewers will claim (all of them) or chat (the chatters).
    let chatters = if args.chat_per_s > 0.0 {
        args.chatters.min(args.viewers)
    } else {
        0
    };
    let tokens = if args.claim || chatters > 0 {
        let t0 = Instant::now();
        let minted = if args.claim { args.viewers } else { chatters };
        let tokens = mint_all(&target, minted, &drop_id).await?;
        report.mint_rate_per_s = Some(minted as f64 / t0.elapsed().as_secs_f64().max(1e-6));
        say(format!(
            "minted {} tokens in {:.2} s",
            tokens.len(),
            t0.elapsed().as_secs_f64()
        ));
        let mut tokens: Vec<Option<String>> = tokens.into_iter().map(Some).collect();
        tokens.resize(args.viewers, None);
        tokens
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
    let (chat_tx, chat_rx) = watch::channel(false);
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
        chat: ChatPlan::new(args.chat_per_s, chatters, chat_rx),
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

        // The measured broadcasts, one at a time (the chatters talk meanwhile).
        if chatters > 0 {
            let _ = chat_tx.send(true);
            // A full round of every chatter before the first measured cue.
            tokio::time::sleep(Duration::from_secs_f64(chatters as f64 / args.chat_per_s)).await;
            say(format!(
                "{chatters} viewers chat, {} messages/s in all",
                args.chat_per_s
            ));
        }
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
        let _ = chat_tx.send(false);
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
