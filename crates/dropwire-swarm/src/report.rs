//! The run's report: what one swarm process measured, the derived figures, merging the
//! reports of several processes, and the human summary.
//!
//! Histograms travel in the JSON as `[value_us, count]` pairs, so merged percentiles are
//! exact, not averages of percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::chat::ChatCounts;

/// Latencies in microseconds, 1 µs to 10 minutes, 3 significant figures.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(
            Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("1 µs to 10 min at 3 significant figures is a valid histogram"),
        )
    }
}

impl Latency {
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    pub fn add(&mut self, other: &Latency) {
        for v in other.0.iter_recorded() {
            self.0
                .saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }

    pub fn pairs(&self) -> Vec<[u64; 2]> {
        self.0
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect()
    }

    pub fn from_pairs(pairs: &[[u64; 2]]) -> Self {
        let mut h = Latency::default();
        for [v, c] in pairs {
            h.0.saturating_record_n(*v, *c);
        }
        h
    }

    pub fn summary(&self) -> Summary {
        let h = &self.0;
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            mean: ms(h.mean().round() as u64),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One broadcast `seq`: how many viewers got it and the slowest one's latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastRow {
    pub seq: u64,
    pub kind: String,
    pub received: u64,
    /// Time to the last viewer: the largest (receive − `ts`), in ms.
    pub max_ms: f64,
    /// From the swarm's fire request to the last viewer (coordinator only), in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_to_last_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MedianWorst {
    pub median: f64,
    pub worst: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hists {
    pub cue_latency_us: Vec<[u64; 2]>,
    pub claim_latency_us: Vec<[u64; 2]>,
}

/// The JSON report. Raw counts and histograms first; [`Report::finish`] derives the rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// `dropwire` or `floor` (the reference broadcaster).
    pub target: String,
    pub server: String,
    pub drop_id: Option<String>,
    /// `coordinator` (created and drove the drop) or `join` (only watched).
    pub role: String,
    pub processes: u32,
    pub started_ms: u64,
    pub duration_s: f64,

    pub viewers: u64,
    pub connected: u64,
    pub failed_connects: u64,
    pub connect_errors: BTreeMap<String, u64>,
    /// Viewers the server disconnected before the end, by reason.
    pub dropped: u64,
    pub drop_reasons: BTreeMap<String, u64>,
    pub connect_s: f64,
    pub connect_rate_per_s: f64,
    pub mint_rate_per_s: Option<f64>,

    pub frames: u64,
    pub gaps: u64,
    pub out_of_order: u64,
    /// Connections made again with `since` after the server ended one (`--resume`).
    #[serde(default)]
    pub resumed: u64,
    /// Broadcasts resumed viewers skipped: a snapshot came instead of the frames missed.
    #[serde(default)]
    pub snapshot_gaps: u64,
    /// From `--kill-pid`'s kill to the last viewer resumed (welcome read), seconds.
    #[serde(default)]
    pub resume_all_s: Option<f64>,
    pub broadcasts: u64,
    pub time_to_last_ms: MedianWorst,
    pub cue_latency_ms: Summary,
    pub claim_latency_ms: Summary,

    pub claims_sent: u64,
    pub claims_ok: u64,
    pub claims_sold_out: u64,
    pub claims_other: BTreeMap<String, u64>,
    pub claims_unanswered: u64,
    pub stock: Option<u64>,
    pub stock_left: Option<u64>,
    pub server_claims: Option<u64>,
    /// Claims granted beyond the stock (by the viewers' count or the server's), 0 when sound.
    pub oversell: Option<u64>,
    /// The chat load's messages and answers (`--chat-per-s`).
    #[serde(default)]
    pub chat: ChatCounts,

    pub server_pid: Option<u32>,
    pub server_rss_base_kib: Option<u64>,
    pub server_rss_kib: Option<u64>,
    pub server_rss_peak_kib: Option<u64>,
    pub rss_per_conn_kib: Option<f64>,
    pub server_cpu_connect_ms: Option<f64>,
    pub server_cpu_broadcast_ms: Option<f64>,
    /// Broadcast frames delivered from the first to the last measured broadcast.
    pub delivered_messages: u64,
    pub cpu_per_msg_us: Option<f64>,
    pub server_cpu_claims_ms: Option<f64>,
    /// The broadcasts' wall time, and what else used the CPUs meanwhile: this swarm process,
    /// every other process (a busy neighbour; includes ksoftirqd), the hypervisor's steal.
    pub broadcast_window_s: Option<f64>,
    pub swarm_cpu_broadcast_ms: Option<f64>,
    pub other_cpu_broadcast_ms: Option<f64>,
    pub steal_broadcast_ms: Option<f64>,
    /// Interrupt time (mostly softirq: the loopback's receive path), machine-wide. Linux
    /// charges it to no process, so it is in neither the server's nor the swarm's CPU time.
    pub softirq_broadcast_ms: Option<f64>,
    /// The same for the claim storm (reveal to the last answer).
    pub claims_window_s: Option<f64>,
    pub other_cpu_claims_ms: Option<f64>,

    pub per_broadcast: Vec<BroadcastRow>,
    pub hist: Hists,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl Report {
    /// Derives the summaries, time to the last viewer, delivered messages and ratios.
    pub fn finish(&mut self) {
        self.cue_latency_ms = Latency::from_pairs(&self.hist.cue_latency_us).summary();
        self.claim_latency_ms = Latency::from_pairs(&self.hist.claim_latency_us).summary();
        self.per_broadcast.sort_by_key(|r| r.seq);
        let bench: Vec<&BroadcastRow> = self
            .per_broadcast
            .iter()
            .filter(|r| r.kind == "bench_cue")
            .collect();
        self.broadcasts = bench.len() as u64;
        let mut lasts: Vec<f64> = bench.iter().map(|r| r.max_ms).collect();
        lasts.sort_by(f64::total_cmp);
        self.time_to_last_ms = MedianWorst {
            median: round3(median(&lasts)),
            worst: lasts.last().copied().unwrap_or(0.0),
        };
        self.delivered_messages = match (bench.first(), bench.last()) {
            (Some(a), Some(b)) => self
                .per_broadcast
                .iter()
                .filter(|r| (a.seq..=b.seq).contains(&r.seq))
                .map(|r| r.received)
                .sum(),
            _ => 0,
        };
        self.cpu_per_msg_us = match self.server_cpu_broadcast_ms {
            Some(ms) if self.delivered_messages > 0 => {
                Some(round3(ms * 1000.0 / self.delivered_messages as f64))
            }
            _ => None,
        };
        self.connect_rate_per_s = if self.connect_s > 0.0 {
            round3(self.connected as f64 / self.connect_s)
        } else {
            0.0
        };
        self.rss_per_conn_kib = match (self.server_rss_kib, self.server_rss_base_kib) {
            (Some(rss), Some(base)) if self.connected > 0 => Some(round3(
                rss.saturating_sub(base) as f64 / self.connected as f64,
            )),
            _ => None,
        };
        self.oversell = self.stock.map(|stock| {
            let server = self.server_claims.unwrap_or(0);
            self.claims_ok.max(server).saturating_sub(stock)
        });
    }

    /// Merges the reports of several swarm processes that watched the same drop.
    pub fn merge(mut reports: Vec<Report>) -> anyhow::Result<Report> {
        anyhow::ensure!(!reports.is_empty(), "nothing to merge");
        // The coordinator's server-side figures are the run's.
        let lead = reports
            .iter()
            .position(|r| r.role == "coordinator")
            .unwrap_or(0);
        let mut out = reports.swap_remove(lead);
        let mut cue = Latency::from_pairs(&out.hist.cue_latency_us);
        let mut claim = Latency::from_pairs(&out.hist.claim_latency_us);
        let mut rows: BTreeMap<u64, BroadcastRow> =
            out.per_broadcast.drain(..).map(|r| (r.seq, r)).collect();
        for r in reports {
            out.processes += r.processes;
            out.viewers += r.viewers;
            out.connected += r.connected;
            out.failed_connects += r.failed_connects;
            out.dropped += r.dropped;
            for (k, v) in r.connect_errors {
                *out.connect_errors.entry(k).or_default() += v;
            }
            for (k, v) in r.drop_reasons {
                *out.drop_reasons.entry(k).or_default() += v;
            }
            out.connect_s = out.connect_s.max(r.connect_s);
            out.duration_s = out.duration_s.max(r.duration_s);
            out.frames += r.frames;
            out.gaps += r.gaps;
            out.out_of_order += r.out_of_order;
            out.resumed += r.resumed;
            out.snapshot_gaps += r.snapshot_gaps;
            out.resume_all_s = match (out.resume_all_s, r.resume_all_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            out.claims_sent += r.claims_sent;
            out.claims_ok += r.claims_ok;
            out.claims_sold_out += r.claims_sold_out;
            out.claims_unanswered += r.claims_unanswered;
            for (k, v) in r.claims_other {
                *out.claims_other.entry(k).or_default() += v;
            }
            out.chat.add(&r.chat);
            cue.add(&Latency::from_pairs(&r.hist.cue_latency_us));
            claim.add(&Latency::from_pairs(&r.hist.claim_latency_us));
            for row in r.per_broadcast {
                match rows.get_mut(&row.seq) {
                    Some(mine) => {
                        mine.received += row.received;
                        mine.max_ms = mine.max_ms.max(row.max_ms);
                    }
                    None => {
                        rows.insert(
                            row.seq,
                            BroadcastRow {
                                fire_to_last_ms: None,
                                ..row
                            },
                        );
                    }
                }
            }
        }
        out.hist.cue_latency_us = cue.pairs();
        out.hist.claim_latency_us = claim.pairs();
        out.per_broadcast = rows.into_values().collect();
        out.finish();
        Ok(out)
    }

    /// What went wrong in the run, if anything: refused or lost connections, gaps, missed
    /// broadcasts, unanswered or odd claims, oversell. Empty for a sound run.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.connected < self.viewers {
            p.push(format!(
                "{} of {} viewers connected",
                self.connected, self.viewers
            ));
        }
        if self.dropped > 0 {
            p.push(format!("{} viewers dropped by the server", self.dropped));
        }
        if self.gaps > 0 || self.out_of_order > 0 {
            p.push(format!(
                "{} gaps, {} out of order",
                self.gaps, self.out_of_order
            ));
        }
        for r in self.per_broadcast.iter().filter(|r| r.kind == "bench_cue") {
            if r.received < self.connected {
                p.push(format!(
                    "broadcast seq {} reached {} of {} viewers",
                    r.seq, r.received, self.connected
                ));
            }
        }
        if self.snapshot_gaps > 0 {
            p.push(format!(
                "{} broadcasts skipped by resumed viewers (a snapshot instead of the frames)",
                self.snapshot_gaps
            ));
        }
        if self.claims_unanswered > 0 {
            p.push(format!("{} claims unanswered", self.claims_unanswered));
        }
        if !self.claims_other.is_empty() {
            p.push(format!(
                "claims refused for other reasons: {:?}",
                self.claims_other
            ));
        }
        if let Some(n) = self.oversell.filter(|n| *n > 0) {
            p.push(format!("oversold by {n}"));
        }
        if let (Some(stock), Some(left)) = (self.stock, self.stock_left)
            && self.claims_ok + left != stock
        {
            p.push(format!(
                "{} ok claims + {left} left != stock {stock}",
                self.claims_ok
            ));
        }
        p
    }

    pub fn read(path: &std::path::Path) -> anyhow::Result<Report> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read report {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a swarm report", path.display()))
    }

    /// A few lines for a person.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3} {unit}"))
        };
        let _ = writeln!(
            s,
            "{} at {}{} — {} process(es), {:.1} s",
            self.target,
            self.server,
            self.drop_id
                .as_deref()
                .map(|d| format!(" drop {d}"))
                .unwrap_or_default(),
            self.processes,
            self.duration_s
        );
        let _ = writeln!(
            s,
            "viewers: {} connected of {} ({} failed, {} dropped by the server) in {:.2} s = {:.0}/s",
            self.connected,
            self.viewers,
            self.failed_connects,
            self.dropped,
            self.connect_s,
            self.connect_rate_per_s
        );
        for (k, v) in self.connect_errors.iter().chain(&self.drop_reasons) {
            let _ = writeln!(s, "  {v} × {k}");
        }
        let _ = writeln!(
            s,
            "frames: {}  gaps: {}  out of order: {}",
            self.frames, self.gaps, self.out_of_order
        );
        if self.resumed > 0 || self.snapshot_gaps > 0 {
            let _ = writeln!(
                s,
                "resumed: {} connections again with since, {} broadcasts skipped by a snapshot{}",
                self.resumed,
                self.snapshot_gaps,
                self.resume_all_s
                    .map(|s| format!("; all back {s:.2} s after the kill"))
                    .unwrap_or_default()
            );
        }
        let c = &self.cue_latency_ms;
        let _ = writeln!(
            s,
            "cue latency (ms, {} samples): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            c.count, c.p50, c.p90, c.p99, c.p999, c.max
        );
        let _ = writeln!(
            s,
            "time to the last viewer over {} broadcasts: median {:.3} ms, worst {:.3} ms",
            self.broadcasts, self.time_to_last_ms.median, self.time_to_last_ms.worst
        );
        if self.claims_sent > 0 {
            let c = &self.claim_latency_ms;
            let _ = writeln!(
                s,
                "claims: {} sent, {} ok, {} sold out, {} unanswered, other {:?}; stock {:?}, left {:?}, oversell {:?}",
                self.claims_sent,
                self.claims_ok,
                self.claims_sold_out,
                self.claims_unanswered,
                self.claims_other,
                self.stock,
                self.stock_left,
                self.oversell
            );
            let _ = writeln!(
                s,
                "claim latency after the reveal (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                c.p50, c.p90, c.p99, c.p999, c.max
            );
        }
        self.chat.human(&mut s, self.connected);
        if let Some(pid) = self.server_pid {
            let _ = writeln!(
                s,
                "server pid {pid}: RSS {:?} KiB (base {:?}, peak {:?}) = {} per connection",
                self.server_rss_kib,
                self.server_rss_base_kib,
                self.server_rss_peak_kib,
                opt(self.rss_per_conn_kib, "KiB")
            );
            let _ = writeln!(
                s,
                "server CPU: connect {}, broadcasts {} for {} delivered = {} per message",
                opt(self.server_cpu_connect_ms, "ms"),
                opt(self.server_cpu_broadcast_ms, "ms"),
                self.delivered_messages,
                opt(self.cpu_per_msg_us, "µs")
            );
            let _ = writeln!(
                s,
                "meanwhile: swarm {}, other processes {}, softirq {}, steal {} over {}",
                opt(self.swarm_cpu_broadcast_ms, "ms"),
                opt(self.other_cpu_broadcast_ms, "ms"),
                opt(self.softirq_broadcast_ms, "ms"),
                opt(self.steal_broadcast_ms, "ms"),
                opt(self.broadcast_window_s, "s")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(role: &str, connected: u64, lat: &[u64], rows: &[(u64, &str, u64, f64)]) -> Report {
        let mut h = Latency::default();
        for us in lat {
            h.record(*us);
        }
        Report {
            role: role.into(),
            processes: 1,
            viewers: connected,
            connected,
            connect_s: 1.0,
            hist: Hists {
                cue_latency_us: h.pairs(),
                claim_latency_us: Vec::new(),
            },
            per_broadcast: rows
                .iter()
                .map(|(seq, kind, received, max_ms)| BroadcastRow {
                    seq: *seq,
                    kind: (*kind).into(),
                    received: *received,
                    max_ms: *max_ms,
                    fire_to_last_ms: None,
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn merging_adds_counts_and_takes_the_slowest_viewer() {
        let mut a = part(
            "coordinator",
            2,
            &[1000, 2000],
            &[
                (5, "figures", 2, 0.5),
                (6, "bench_cue", 2, 2.0),
                (7, "bench_cue", 2, 9.0),
            ],
        );
        a.server_cpu_broadcast_ms = Some(12.0);
        a.server_rss_base_kib = Some(1000);
        a.server_rss_kib = Some(1040);
        let b = part(
            "join",
            3,
            &[3000, 4000, 5000],
            &[
                (6, "bench_cue", 3, 4.0),
                (7, "bench_cue", 3, 1.0),
                (8, "state", 3, 0.1),
            ],
        );
        let m = Report::merge(vec![b, a]).unwrap();
        assert_eq!(m.processes, 2);
        assert_eq!(m.connected, 5);
        assert_eq!(m.broadcasts, 2);
        assert_eq!(
            m.time_to_last_ms,
            MedianWorst {
                median: 6.5,
                worst: 9.0
            }
        );
        // seq 6 and 7, every viewer: 10 frames for 12 ms.
        assert_eq!(m.delivered_messages, 10);
        assert_eq!(m.cpu_per_msg_us, Some(1200.0));
        assert_eq!(m.rss_per_conn_kib, Some(8.0));
        assert_eq!(m.cue_latency_ms.count, 5);
        assert!((m.cue_latency_ms.max - 5.0).abs() < 0.01);
        let back: Report = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.hist.cue_latency_us, m.hist.cue_latency_us);
    }

    #[test]
    fn oversell_counts_what_exceeds_the_stock() {
        let mut r = Report {
            stock: Some(10),
            claims_ok: 10,
            server_claims: Some(10),
            ..Report::default()
        };
        r.finish();
        assert_eq!(r.oversell, Some(0));
        r.server_claims = Some(12);
        r.finish();
        assert_eq!(r.oversell, Some(2));
    }
}
