//! Folding every viewer's outcome into the [`Report`]: counts, latency histograms, and
//! one row per broadcast with its fire-to-last-viewer time.

use std::collections::BTreeMap;

use crate::frame::Kind;
use crate::report::{BroadcastRow, Latency, Report};
use crate::viewer::{ClaimAnswer, Outcome};

/// Folds every viewer's outcome into the report; returns each seq's last receive time (µs).
pub(super) fn gather(report: &mut Report, outcomes: &[Outcome]) -> BTreeMap<u64, u64> {
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
        report.chat.add(&o.chat);
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
pub(super) fn attach_fire_times(
    report: &mut Report,
    fired_us: &[u64],
    last_recv: &BTreeMap<u64, u64>,
) {
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
