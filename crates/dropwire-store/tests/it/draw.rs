//! Fair start on the embedded store beyond the conformance suite: entries and a draw's
//! answers survive a restart (journal replay, and a snapshot), and the draw's order is
//! uniform (many draws on seeded tickets, chi-square) with no edge for an early arrival.

use std::sync::Arc;

use dropwire_core::{ClaimOutcome, ClaimReason};
use dropwire_store::conformance::{DRAW_AT, entry, fresh_id, record};
use dropwire_store::{MemoryStore, MemoryStoreConfig, SnapshotPolicy, Store, StoreError};
use proptest::prelude::RngCore;
use proptest::test_runner::{RngAlgorithm, TestRng};

use super::history::T0;

fn open(dir: &std::path::Path) -> Result<MemoryStore, StoreError> {
    MemoryStore::open(MemoryStoreConfig {
        data_dir: Some(dir.to_owned()),
        fsync: true,
        snapshots: SnapshotPolicy::never(),
    })
}

const ENTERED: ClaimOutcome = ClaimOutcome::Entered {
    draw_at_ms: DRAW_AT,
};

async fn entries_and_the_draw_survive_a_restart(snapshot: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let id = fresh_id("draw-restart");
    store.create_drop(record(&id, 2, 1, 900)).await.unwrap();
    for (i, v) in ["ana", "bob", "cat", "dan"].iter().enumerate() {
        let ticket = [40, 10, 30, 20][i];
        let got = store
            .claim(entry(&id, v, "r", T0 + 1 + i as u64, ticket))
            .await
            .unwrap();
        assert_eq!(got, ENTERED);
    }
    if snapshot {
        store.snapshot_now().unwrap();
    }
    drop(store);
    // Reopened before the draw: the entries are there, answered alike.
    let store = open(dir.path()).unwrap();
    let again = store
        .claim(entry(&id, "ana", "r", T0 + 500, 0))
        .await
        .unwrap();
    assert_eq!(again, ENTERED);
    // The draw after the restart: bob (10) and dan (20) win, in that order.
    let bob = store
        .claim(entry(&id, "bob", "r", DRAW_AT, 0))
        .await
        .unwrap();
    let ClaimOutcome::Granted(bob) = bob else {
        panic!("{bob:?}")
    };
    assert_eq!(bob.rank, 0);
    if snapshot {
        store.snapshot_now().unwrap();
    }
    drop(store);
    // Reopened after the draw: every answer as drawn, nothing drawn twice.
    let store = open(dir.path()).unwrap();
    let mut answers = Vec::new();
    for v in ["ana", "bob", "cat", "dan"] {
        answers.push(
            store
                .claim(entry(&id, v, "r", DRAW_AT + 10, 0))
                .await
                .unwrap(),
        );
    }
    assert_eq!(answers[0], ClaimOutcome::Refused(ClaimReason::SoldOut));
    assert_eq!(answers[1], ClaimOutcome::Granted(bob));
    assert_eq!(answers[2], ClaimOutcome::Refused(ClaimReason::SoldOut));
    match &answers[3] {
        ClaimOutcome::Granted(c) => assert_eq!((c.viewer_id.as_str(), c.rank), ("dan", 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.claims(&id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn entries_and_the_draw_survive_a_restart_by_journal() {
    entries_and_the_draw_survive_a_restart(false).await;
}

#[tokio::test]
async fn entries_and_the_draw_survive_a_restart_by_snapshot() {
    entries_and_the_draw_survive_a_restart(true).await;
}

/// χ² critical value for 4 degrees of freedom at 0.999.
const CHI2_4_999: f64 = 18.467;

fn chi2(counts: &[u64], expected: f64) -> f64 {
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// 4000 draws of 5 entrants for 1 item, on tickets from a seeded RNG (taken in arrival
/// order, as the hub draws one per entry), the arrival order rotated from draw to draw:
/// who wins is uniform over the entrants, and over arrival positions (no edge for the
/// first to arrive).
#[tokio::test]
async fn the_draw_is_uniform_and_an_early_arrival_has_no_edge() {
    const DRAWS: u64 = 4000;
    const N: usize = 5;
    let store = Arc::new(
        MemoryStore::open(MemoryStoreConfig {
            data_dir: None,
            fsync: false,
            ..MemoryStoreConfig::default()
        })
        .unwrap(),
    );
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[15; 32]);
    let mut by_entrant = [0u64; N];
    let mut by_arrival = [0u64; N];
    for k in 0..DRAWS {
        let id = fresh_id("uniform");
        store.create_drop(record(&id, 1, 1, 900)).await.unwrap();
        // Arrival order: a rotation and, every other draw, a reversal of e0..e4.
        let mut order: Vec<usize> = (0..N).map(|j| (j + k as usize) % N).collect();
        if k % 2 == 1 {
            order.reverse();
        }
        for (pos, e) in order.iter().enumerate() {
            let ticket = rng.next_u64() % dropwire_store::TICKET_LIMIT;
            let got = store
                .claim(entry(&id, &format!("e{e}"), "r", T0 + pos as u64, ticket))
                .await
                .unwrap();
            assert_eq!(got, ENTERED);
        }
        let mut winners = 0;
        for (pos, e) in order.iter().enumerate() {
            let got = store
                .claim(entry(&id, &format!("e{e}"), "r", DRAW_AT, 0))
                .await
                .unwrap();
            if let ClaimOutcome::Granted(_) = got {
                winners += 1;
                by_entrant[*e] += 1;
                by_arrival[pos] += 1;
            }
        }
        assert_eq!(winners, 1, "one item, one winner");
    }
    let expected = DRAWS as f64 / N as f64;
    let (x_entrant, x_arrival) = (chi2(&by_entrant, expected), chi2(&by_arrival, expected));
    assert!(
        x_entrant < CHI2_4_999,
        "by entrant {by_entrant:?}: χ² {x_entrant}"
    );
    assert!(
        x_arrival < CHI2_4_999,
        "by arrival {by_arrival:?}: χ² {x_arrival}"
    );
    // The first arrival wins its fair share: within 3.29 standard deviations of 1/5.
    let sd = (DRAWS as f64 * 0.2 * 0.8).sqrt();
    let first = by_arrival[0] as f64;
    assert!(
        (first - expected).abs() < 3.29 * sd,
        "first arrival won {first} of {DRAWS}"
    );
}

/// The hub's tickets: from the OS CSPRNG, below 2^52, not all alike.
#[test]
fn tickets_are_52_bits_from_the_os() {
    let tickets: Vec<u64> = (0..1000)
        .map(|_| dropwire_store::new_ticket().unwrap())
        .collect();
    assert!(tickets.iter().all(|t| *t < 1 << 52));
    assert_eq!(dropwire_store::TICKET_LIMIT, 1 << 52);
    let distinct: std::collections::HashSet<_> = tickets.iter().collect();
    assert_eq!(
        distinct.len(),
        1000,
        "52 random bits do not repeat in 1000 draws"
    );
    // Some ticket uses the top bits: they are not narrower than 52 bits.
    assert!(tickets.iter().any(|t| *t >= 1 << 51));
}
