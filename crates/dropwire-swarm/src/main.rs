//! `dropwire-swarm`: a load generator for dropwire, and the floor it is measured against.
//!
//! - `dropwire-swarm --server http://127.0.0.1:8080 --admin-token T --viewers N
//!   [--claim --stock S] [--report FILE]` creates its own drop, connects N viewers (each
//!   socket bound to one of 127.0.0.1..64, so one process can hold thousands without
//!   running out of ports), starts the drop, fires measured broadcasts one at a time,
//!   optionally reveals the item so every viewer claims at once, closes the drop, prints a
//!   summary and writes a JSON report (HDR-histogram percentiles, connections, gaps,
//!   claims, the server's RSS and CPU time from `/proc` when it runs here).
//!   `--chat-per-s R [--chatters N]` adds chat load: N signed-in viewers send R chat
//!   messages a second in all while the measured broadcasts run.
//! - `--join ID` watches a drop another swarm process created, for runs larger than one
//!   process's open-file limit; `dropwire-swarm merge A.json B.json --report ALL.json`
//!   merges their reports exactly (histograms are carried whole).
//! - `dropwire-swarm floor --bind 127.0.0.1:9000` runs the reference broadcaster: a bare
//!   tokio-tungstenite server that writes the same pre-serialized bytes to every socket;
//!   `floor --single-thread` the real floor: one thread, one epoll loop, each broadcast
//!   framed once and that one buffer written to every socket.

mod chat;
mod floor;
mod frame;
mod procfs;
mod report;
mod run;
mod target;
mod viewer;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "dropwire-swarm",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: run::RunArgs,
    /// No progress lines on stderr.
    #[arg(long, global = true)]
    quiet: bool,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Exit with status 2 when the run was not sound (failed or dropped connections, gaps,
    /// missed broadcasts, unanswered claims, oversell).
    #[arg(long, global = true)]
    strict: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the reference broadcaster (the floor).
    Floor {
        #[arg(long, default_value = "127.0.0.1:9000")]
        bind: SocketAddr,
        /// One OS thread and one epoll loop, each broadcast framed once and the same buffer
        /// written to every socket (no task per viewer): the floor of one write per viewer.
        #[arg(long)]
        single_thread: bool,
    },
    /// Merges the reports of swarm processes that watched the same drop.
    Merge {
        /// The reports; the coordinator's server figures are kept.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Where to write the merged report (default: stdout).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

fn write_report(report: &Report, path: Option<&PathBuf>) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    match path {
        Some(p) => std::fs::write(p, json + "\n")
            .with_context(|| format!("cannot write the report to {}", p.display())),
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

/// Lists the run's problems; with `--strict`, any problem ends the process with status 2.
fn check(report: &Report, strict: bool) {
    let problems = report.problems();
    for p in &problems {
        eprintln!("[swarm] problem: {p}");
    }
    if strict && !problems.is_empty() {
        std::process::exit(2);
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Floor {
        bind,
        single_thread: true,
    }) = cli.command
    {
        // No runtime at all: the loop is the only thread.
        return floor::single::serve(bind);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(run_cli(cli))
}

async fn run_cli(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Floor { bind, .. }) => floor::serve(bind).await,
        Some(Command::Merge { reports, report }) => {
            let parts = reports
                .iter()
                .map(|p| Report::read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let merged = Report::merge(parts)?;
            if !cli.quiet {
                eprint!("{}", merged.human());
            }
            write_report(&merged, report.as_ref())?;
            check(&merged, cli.strict);
            Ok(())
        }
        None => {
            let path = cli.run.report.clone();
            let report = run::run(cli.run, cli.quiet).await?;
            if cli.json {
                write_report(&report, None)?;
            } else {
                print!("{}", report.human());
            }
            if let Some(p) = &path {
                write_report(&report, Some(p))?;
            }
            check(&report, cli.strict);
            Ok(())
        }
    }
}
