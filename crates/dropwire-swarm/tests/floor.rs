//! The swarm against the real reference broadcasters (`dropwire-swarm floor`, and
//! `floor --single-thread`), over real sockets: one process, two processes on one drop
//! with merged reports, and a claim storm; each against both floors.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dropwire-swarm");

/// The multi-threaded floor's extra arguments (none), and the single-thread floor's.
const MULTI: &[&str] = &[];
const SINGLE: &[&str] = &["--single-thread"];

/// The floor on a free port; killed when dropped.
struct Floor {
    child: Child,
    url: String,
}

impl Floor {
    fn start(extra: &[&str]) -> Floor {
        let mut child = Command::new(BIN)
            .args(["floor", "--bind", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the floor starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the floor prints its address");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Floor { child, url }
    }

    /// The floor process's threads, from `/proc`.
    fn threads(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dropwire-swarm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bench_rows(report: &Value) -> Vec<&Value> {
    report["per_broadcast"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "bench_cue")
        .collect()
}

#[test]
fn one_process_times_every_broadcast_to_every_viewer() {
    one_process(MULTI, "one.json");
}

#[test]
fn one_process_times_every_broadcast_to_every_viewer_single_thread() {
    one_process(SINGLE, "one-st.json");
}

fn one_process(kind: &[&str], report: &str) {
    let floor = Floor::start(kind);
    let path = scratch(report);
    let status = Command::new(BIN)
        .args([
            "--server",
            &floor.url,
            "--viewers",
            "120",
            "--broadcasts",
            "4",
            "--gap-ms",
            "10",
        ])
        .args(["--quiet", "--strict", "--report"])
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "swarm exited with {status}");
    let r = read(&path);
    assert_eq!(r["target"], "floor");
    assert_eq!(r["connected"], 120);
    assert_eq!(r["failed_connects"], 0);
    assert_eq!(r["gaps"], 0);
    assert_eq!(r["broadcasts"], 4);
    let rows = bench_rows(&r);
    assert_eq!(rows.len(), 4);
    // Consecutive seqs, each delivered to all 120 viewers, then the close.
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["seq"], i as u64 + 1);
        assert_eq!(row["received"], 120);
        assert!(row["fire_to_last_ms"].is_number());
    }
    assert_eq!(r["delivered_messages"], 480);
    assert_eq!(r["cue_latency_ms"]["count"], 480);
    for key in ["p50", "p99", "max"] {
        assert!(r["cue_latency_ms"][key].is_number());
        assert!(r["claim_latency_ms"][key].is_number());
    }
    // The floor runs here: its memory and CPU time were read from /proc.
    assert!(r["server_rss_kib"].as_u64().unwrap() > 0);
    assert!(r["server_cpu_broadcast_ms"].is_number());
    if kind == SINGLE {
        // It served 120 viewers and the control requests on its one thread.
        assert_eq!(floor.threads(), 1);
    }
}

#[test]
fn two_processes_watch_one_drop_and_their_reports_merge() {
    two_processes(MULTI, "");
}

#[test]
fn two_processes_watch_one_drop_and_their_reports_merge_single_thread() {
    two_processes(SINGLE, "st-");
}

fn two_processes(kind: &[&str], prefix: &str) {
    let floor = Floor::start(kind);
    let (a, b, all) = (
        scratch(&format!("{prefix}a.json")),
        scratch(&format!("{prefix}b.json")),
        scratch(&format!("{prefix}all.json")),
    );
    let drop_id = format!("merge-{prefix}{}", std::process::id());
    let lead = Command::new(BIN)
        .args([
            "--server",
            &floor.url,
            "--viewers",
            "70",
            "--broadcasts",
            "3",
            "--gap-ms",
            "10",
        ])
        .args([
            "--drop-id",
            &drop_id,
            "--expect-viewers",
            "100",
            "--quiet",
            "--strict",
            "--report",
        ])
        .arg(&a)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let joiner = Command::new(BIN)
        .args([
            "--server",
            &floor.url,
            "--viewers",
            "30",
            "--join",
            &drop_id,
        ])
        .args(["--quiet", "--strict", "--report"])
        .arg(&b)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(lead.wait_with_output().unwrap().status.success());
    assert!(joiner.wait_with_output().unwrap().status.success());
    assert_eq!(read(&b)["role"], "join");
    let status = Command::new(BIN)
        .args(["merge", "--quiet", "--strict", "--report"])
        .arg(&all)
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(status.success());
    let m = read(&all);
    assert_eq!(m["processes"], 2);
    assert_eq!(m["connected"], 100);
    assert_eq!(m["gaps"], 0);
    let rows = bench_rows(&m);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["received"] == 100));
    assert_eq!(m["delivered_messages"], 300);
    assert_eq!(m["cue_latency_ms"]["count"], 300);
}

#[test]
fn a_claim_storm_sells_the_stock_once() {
    claim_storm(MULTI, "storm.json");
}

#[test]
fn a_claim_storm_sells_the_stock_once_single_thread() {
    claim_storm(SINGLE, "storm-st.json");
}

fn claim_storm(kind: &[&str], report: &str) {
    let floor = Floor::start(kind);
    let path = scratch(report);
    let status = Command::new(BIN)
        .args([
            "--server",
            &floor.url,
            "--viewers",
            "40",
            "--broadcasts",
            "0",
        ])
        .args(["--claim", "--stock", "7", "--quiet", "--strict", "--report"])
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "swarm exited with {status}");
    let r = read(&path);
    assert_eq!(r["claims_sent"], 40);
    assert_eq!(r["claims_ok"], 7);
    assert_eq!(r["claims_sold_out"], 33);
    assert_eq!(r["claims_unanswered"], 0);
    assert_eq!(r["stock_left"], 0);
    assert_eq!(r["server_claims"], 7);
    assert_eq!(r["oversell"], 0);
    assert_eq!(r["claim_latency_ms"]["count"], 40);
    // Every viewer saw the reveal.
    let reveals: Vec<&Value> = r["per_broadcast"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["kind"] == "reveal")
        .collect();
    assert_eq!(reveals.len(), 1);
    assert_eq!(reveals[0]["received"], 40);
}
