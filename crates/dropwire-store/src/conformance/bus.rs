//! The bus contract suite: one function per promise of [`Bus`] (see [`crate::bus`]), run on
//! every implementation by [`bus_conformance_tests!`](crate::bus_conformance_tests): the
//! numbering in one order, the answers to marks (`dup`, `stale`, `gone`, figures only when
//! newer), reading missed broadcasts back, the numbering never going back, the audience
//! sums, and log announcements. Each function uses its own fresh drop and two nodes' ends
//! of one bus over one store ([`BusNet`]).

use std::sync::Arc;
use std::time::Duration;

use dropwire_core::DropId;
use dropwire_core::timeline::{ControlAction, ControlEntry};
use tokio::sync::mpsc;

use super::fixtures::{T0, new_drop};
use super::fresh_id;
use crate::Store;
use crate::bus::{AudienceReport, AudienceTotals, Bus, BusEvent, Mark, Published};

/// The store every node shares and two nodes' ends (`a`, `b`) of one bus over it.
#[derive(Debug, Clone)]
pub struct BusNet {
    pub store: Arc<dyn Store>,
    pub a: Arc<dyn Bus>,
    pub b: Arc<dyn Bus>,
}

impl BusNet {
    /// Two nodes' ends of the Redis bus beside `store` (each its own subscription).
    pub async fn on_redis(store: crate::RedisStore) -> BusNet {
        let a = crate::RedisBus::open(&store, "a".into())
            .await
            .expect("bus");
        let b = crate::RedisBus::open(&store, "b".into())
            .await
            .expect("bus");
        BusNet {
            store: Arc::new(store),
            a: Arc::new(a),
            b: Arc::new(b),
        }
    }
}

/// Expands to one `#[tokio::test]` per promise, each getting a [`BusNet`] from `$make` (an
/// async expression evaluated once per test).
#[macro_export]
macro_rules! bus_conformance_tests {
    ($make:expr) => {
        $crate::bus_conformance_tests!(@each $make;
            broadcasts_are_numbered_in_one_order,
            a_once_mark_goes_out_once,
            a_node_behind_on_the_log_is_stale,
            a_figure_goes_out_only_when_newer,
            an_unknown_drop_is_gone,
            missed_broadcasts_are_read_back,
            the_numbering_never_goes_back,
            audience_totals_sum_the_nodes_in_time,
            log_changes_reach_every_node
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let net: $crate::conformance::bus::BusNet = $make.await;
                $crate::conformance::bus::$name(net).await;
            }
        )*
    };
}

/// A hang guard, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(20);

/// The next event on a node's queue (a resubscription notice skipped).
async fn next(events: &mut mpsc::Receiver<BusEvent>) -> BusEvent {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("an event in time")
            .expect("the subscription holds");
        if event != BusEvent::Resubscribed {
            return event;
        }
    }
}

fn body(seq: u64, n: u32) -> String {
    format!(r#"{{"type":"test","seq":{seq},"n":{n}}}"#)
}

/// Publishes test message `n` (its body is [`body`]) under `mark`.
async fn publish(bus: &Arc<dyn Bus>, id: &DropId, n: u32, mark: &Mark) -> Published {
    let suffix = format!(r#","n":{n}}}"#);
    bus.publish(id, r#"{"type":"test","seq":"#, &suffix, mark)
        .await
        .expect("publish")
}

fn once(field: &str, log_len: u64, at_ms: u64) -> Mark {
    Mark::Once {
        field: field.into(),
        log_len,
        at_ms,
        sets: Vec::new(),
    }
}

fn newer(version: u64, revealed: u64, content: &str) -> Mark {
    Mark::Newer {
        field: "stock",
        version,
        revealed,
        content: content.into(),
    }
}

pub async fn broadcasts_are_numbered_in_one_order(net: BusNet) {
    let id = new_drop(&*net.store, "bus-order", 10, 1, 900).await;
    let mut on_a = net.a.subscribe(&id).await.expect("subscribe");
    let mut on_b = net.b.subscribe(&id).await.expect("subscribe");
    let mut sent = Vec::new();
    for n in 1..=6 {
        let from = if n % 3 == 0 { &net.b } else { &net.a };
        sent.push(publish(from, &id, n, &Mark::Always).await);
    }
    let seqs: Vec<Published> = (1..=6).map(Published::Sent).collect();
    assert_eq!(sent, seqs, "one sequence over both nodes, from 1");
    for events in [&mut on_a, &mut on_b] {
        for n in 1..=6 {
            let expected = BusEvent::Broadcast(body(u64::from(n), n));
            assert_eq!(
                next(events).await,
                expected,
                "every node, the publisher too"
            );
        }
    }
}

pub async fn a_once_mark_goes_out_once(net: BusNet) {
    let id = new_drop(&*net.store, "bus-once", 10, 1, 900).await;
    let cue = once("cue:s1:100", 0, 100);
    assert_eq!(publish(&net.a, &id, 1, &cue).await, Published::Sent(1));
    assert_eq!(publish(&net.b, &id, 2, &cue).await, Published::Dup);
    assert_eq!(publish(&net.a, &id, 3, &cue).await, Published::Dup);
    let other = once("cue:s2:200", 0, 200);
    assert_eq!(
        publish(&net.b, &id, 4, &other).await,
        Published::Sent(2),
        "a duplicate takes no number"
    );
}

pub async fn a_node_behind_on_the_log_is_stale(net: BusNet) {
    let id = new_drop(&*net.store, "bus-stale", 10, 1, 900).await;
    let entry = |at_ms, action| ControlEntry { at_ms, action };
    let store = &net.store;
    store
        .append_control(&id, 0, entry(T0 + 50, ControlAction::Start))
        .await
        .expect("start");
    store
        .append_control(&id, 1, entry(T0 + 200, ControlAction::Pause))
        .await
        .expect("pause");
    // Computed from the start alone: right about anything before the pause.
    let before_pause = once("cue:s1", 1, T0 + 100);
    assert_eq!(
        publish(&net.a, &id, 1, &before_pause).await,
        Published::Sent(1)
    );
    // Computed from nothing, about a time after the start: the node missed the start.
    let missed_start = once("cue:s2", 0, T0 + 100);
    assert_eq!(
        publish(&net.a, &id, 2, &missed_start).await,
        Published::Stale
    );
    // Computed from the start alone, about a time after the pause.
    let missed_pause = once("cue:s3", 1, T0 + 300);
    assert_eq!(
        publish(&net.b, &id, 3, &missed_pause).await,
        Published::Stale
    );
    // A log longer than the drop's: the node cannot have computed from it.
    assert_eq!(
        publish(&net.b, &id, 4, &once("cue:s4", 3, T0)).await,
        Published::Stale
    );
    // A stale answer does not use up the mark: the node that re-read the log publishes it.
    let reread = once("cue:s2", 2, T0 + 100);
    assert_eq!(publish(&net.a, &id, 5, &reread).await, Published::Sent(2));
    let reread = once("cue:s3", 2, T0 + 300);
    assert_eq!(publish(&net.b, &id, 6, &reread).await, Published::Sent(3));
}

pub async fn a_figure_goes_out_only_when_newer(net: BusNet) {
    let id = new_drop(&*net.store, "bus-newer", 10, 1, 900).await;
    let (a, b) = (&net.a, &net.b);
    assert_eq!(
        publish(a, &id, 1, &newer(1, 0, "x")).await,
        Published::Sent(1)
    );
    // The same version again, whatever it says: another node read the same figures.
    assert_eq!(publish(b, &id, 2, &newer(1, 0, "y")).await, Published::Dup);
    // Newer but saying the same: nothing to tell viewers (and the version moves on).
    assert_eq!(publish(b, &id, 3, &newer(2, 0, "x")).await, Published::Dup);
    assert_eq!(publish(a, &id, 4, &newer(2, 0, "z")).await, Published::Dup);
    assert_eq!(
        publish(a, &id, 5, &newer(3, 0, "z")).await,
        Published::Sent(2)
    );
    // Older in either count: never after a newer one.
    assert_eq!(publish(b, &id, 6, &newer(2, 1, "w")).await, Published::Dup);
    // A reveal with no new claim: newer by the products revealed.
    assert_eq!(
        publish(b, &id, 7, &newer(3, 1, "w")).await,
        Published::Sent(3)
    );
    // Each field on its own.
    let board = Mark::Newer {
        field: "leaderboard",
        version: 1,
        revealed: 0,
        content: "x".into(),
    };
    assert_eq!(publish(a, &id, 8, &board).await, Published::Sent(4));
}

pub async fn an_unknown_drop_is_gone(net: BusNet) {
    let id = fresh_id("bus-gone");
    assert_eq!(
        publish(&net.a, &id, 1, &Mark::Always).await,
        Published::Gone
    );
    assert_eq!(
        publish(&net.a, &id, 1, &once("cue:s1", 0, 0)).await,
        Published::Gone
    );
    let report = AudienceReport {
        count: 3,
        anonymous_joins: 1,
        new_ids: vec!["ana".into()],
    };
    let totals = net
        .b
        .report_audience(&id, &report, T0, T0 + 15_000)
        .await
        .expect("report");
    assert_eq!(totals, AudienceTotals::default());
}

pub async fn missed_broadcasts_are_read_back(net: BusNet) {
    let id = new_drop(&*net.store, "bus-missed", 10, 1, 900).await;
    for n in 1..=5 {
        publish(&net.a, &id, n, &Mark::Always).await;
    }
    // A node that subscribes now hears what follows, and reads back what came before.
    let mut late = net.b.subscribe(&id).await.expect("subscribe");
    publish(&net.a, &id, 6, &Mark::Always).await;
    assert_eq!(next(&mut late).await, BusEvent::Broadcast(body(6, 6)));
    let all: Vec<(u64, String)> = (1..=6)
        .map(|n| (u64::from(n), body(u64::from(n), n)))
        .collect();
    let since = |after, upto| net.b.since(&id, after, upto);
    assert_eq!(since(0, None).await.expect("since"), all);
    assert_eq!(since(2, Some(4)).await.expect("since"), all[2..4]);
    assert_eq!(since(6, None).await.expect("since"), Vec::new());
    let recent = |n| net.b.recent(&id, n);
    assert_eq!(recent(2).await.expect("recent"), (6, all[4..].to_vec()));
    assert_eq!(recent(100).await.expect("recent"), (6, all.clone()));
    let fresh = new_drop(&*net.store, "bus-untouched", 10, 1, 900).await;
    assert_eq!(
        net.a.recent(&fresh, 10).await.expect("recent"),
        (0, Vec::new())
    );
}

pub async fn the_numbering_never_goes_back(net: BusNet) {
    let id = new_drop(&*net.store, "bus-floor", 10, 1, 900).await;
    publish(&net.a, &id, 1, &Mark::Always).await;
    publish(&net.a, &id, 2, &Mark::Always).await;
    // A node delivered up to 10 before the bus lost its latest broadcasts.
    assert_eq!(net.b.keep_seq_above(&id, 10).await.expect("floor"), 2);
    assert_eq!(
        publish(&net.a, &id, 3, &Mark::Always).await,
        Published::Sent(11)
    );
    // Already above: nothing changes.
    assert_eq!(net.a.keep_seq_above(&id, 5).await.expect("floor"), 11);
    assert_eq!(
        publish(&net.b, &id, 4, &Mark::Always).await,
        Published::Sent(12)
    );
}

/// One node's report of `count` viewers (`ids` and `anonymous_joins` new), at `now_ms`.
async fn report(
    bus: &Arc<dyn Bus>,
    id: &DropId,
    (count, anonymous_joins, ids): (u64, u64, &[&str]),
    now_ms: u64,
    deadline_ms: u64,
) -> AudienceTotals {
    let report = AudienceReport {
        count,
        anonymous_joins,
        new_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
    };
    bus.report_audience(id, &report, now_ms, deadline_ms)
        .await
        .expect("report")
}

fn viewers(seq: u64, ts: u64, count: u64) -> BusEvent {
    BusEvent::Broadcast(format!(
        r#"{{"type":"viewers","seq":{seq},"ts":{ts},"count":{count}}}"#
    ))
}

pub async fn audience_totals_sum_the_nodes_in_time(net: BusNet) {
    let id = new_drop(&*net.store, "bus-audience", 10, 1, 900).await;
    let mut events = net.a.subscribe(&id).await.expect("subscribe");
    let (a, b) = (&net.a, &net.b);
    let until = T0 + 15_000;
    let totals = |now, peak, unique| AudienceTotals { now, peak, unique };

    let got = report(a, &id, (3, 0, &["x", "y"]), T0, until).await;
    assert_eq!(got, totals(3, 3, 2));
    assert_eq!(next(&mut events).await, viewers(1, T0, 3));
    // Unique viewers over every node: `y` joined both; an anonymous join counts once.
    let got = report(b, &id, (2, 1, &["y", "z"]), T0 + 1, until).await;
    assert_eq!(got, totals(5, 5, 4));
    assert_eq!(next(&mut events).await, viewers(2, T0 + 1, 5));
    // The same total again: no broadcast (the next number goes to the next message).
    let got = report(a, &id, (3, 0, &[]), T0 + 2, until).await;
    assert_eq!(got, totals(5, 5, 4));
    // A node leaving takes its viewers out at once; the peak stays.
    let got = report(a, &id, (0, 0, &[]), T0 + 3, 0).await;
    assert_eq!(got, totals(2, 5, 4));
    assert_eq!(next(&mut events).await, viewers(3, T0 + 3, 2));
    // A node that stops reporting drops out after its deadline.
    let late = until + 1;
    let got = report(a, &id, (1, 0, &["x"]), late, late + 15_000).await;
    assert_eq!(got, totals(1, 5, 4));
    assert_eq!(next(&mut events).await, viewers(4, late, 1));
    assert_eq!(
        publish(&net.b, &id, 1, &Mark::Always).await,
        Published::Sent(5)
    );
}

pub async fn log_changes_reach_every_node(net: BusNet) {
    let id = new_drop(&*net.store, "bus-log", 10, 1, 900).await;
    let mut on_a = net.a.subscribe(&id).await.expect("subscribe");
    let mut on_b = net.b.subscribe(&id).await.expect("subscribe");
    net.a.announce_log(&id, 3).await.expect("announce");
    assert_eq!(next(&mut on_a).await, BusEvent::LogChanged(3));
    assert_eq!(next(&mut on_b).await, BusEvent::LogChanged(3));
    // Not a broadcast: it takes no number.
    assert_eq!(
        publish(&net.b, &id, 1, &Mark::Always).await,
        Published::Sent(1)
    );
    assert_eq!(next(&mut on_a).await, BusEvent::Broadcast(body(1, 1)));
}
