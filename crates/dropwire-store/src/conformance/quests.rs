//! The suite's cases about quests ([`Store::award`]): once per viewer, only in the window,
//! the points on the board beside claims' points, a retried rid answered alike.

use std::sync::Arc;

use dropwire_core::ClaimOutcome;
use dropwire_core::claim::claim_points;

use super::fixtures::{T0, new_drop, req};
use crate::{AwardOutcome, QuestAward, Store, StoreError};

/// `viewer` (handle `@viewer`) earns quest `quest` (50 points, window T0+100..T0+200).
pub fn award(
    drop: &dropwire_core::DropId,
    quest: &str,
    viewer: &str,
    rid: &str,
    now_ms: u64,
) -> QuestAward {
    QuestAward {
        drop_id: drop.clone(),
        quest: quest.into(),
        viewer_id: viewer.into(),
        handle: format!("@{viewer}"),
        points: 50,
        rid: rid.into(),
        now_ms,
        opens_ms: T0 + 100,
        closes_ms: T0 + 200,
        limit: None,
    }
}

fn board(f: &crate::DropFigures) -> Vec<(&str, u32)> {
    f.leaderboard
        .iter()
        .map(|e| (e.handle.as_str(), e.points))
        .collect()
}

pub async fn a_quest_awards_each_viewer_once_in_its_window<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "quest-once", 5, 1, 900).await;
    let ask = |a: QuestAward| {
        let store = Arc::clone(&store);
        async move { store.award(a).await.expect("award") }
    };
    // Before and at the end of the window: closed, nothing recorded.
    assert_eq!(
        ask(award(&id, "s2", "ana", "early", T0 + 99)).await,
        AwardOutcome::Closed
    );
    assert_eq!(
        ask(award(&id, "s2", "ana", "late", T0 + 200)).await,
        AwardOutcome::Closed
    );
    assert!(
        store
            .figures(&id)
            .await
            .expect("figures")
            .leaderboard
            .is_empty()
    );
    // In it: once; the same rid again (even after the window) gets the same answer.
    let won = AwardOutcome::Awarded { points: 50 };
    assert_eq!(ask(award(&id, "s2", "ana", "r1", T0 + 100)).await, won);
    assert_eq!(ask(award(&id, "s2", "ana", "r1", T0 + 150)).await, won);
    assert_eq!(ask(award(&id, "s2", "ana", "r1", T0 + 500)).await, won);
    assert_eq!(
        ask(award(&id, "s2", "ana", "r2", T0 + 150)).await,
        AwardOutcome::AlreadyAwarded
    );
    // Another quest counts apart; a viewer without a claim is on the board, not a claimer.
    assert_eq!(ask(award(&id, "s5", "ana", "r1", T0 + 199)).await, won);
    assert_eq!(ask(award(&id, "s2", "bo", "x", T0 + 120)).await, won);
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.claimers, f.awards), (0, 3));
    assert_eq!(board(&f), [("@ana", 100), ("@bo", 50)]);
    // Quest points add to claims' points.
    let ClaimOutcome::Granted(c) = store
        .claim(req(&id, "mug", "bo", "c", T0 + 130))
        .await
        .expect("claim")
    else {
        panic!("not granted")
    };
    assert_eq!(c.points, claim_points(0));
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(f.claimers, 1);
    assert_eq!(board(&f), [("@bo", 50 + claim_points(0)), ("@ana", 100)]);
    let missing = store
        .award(award(
            &super::fresh_id("missing"),
            "s2",
            "ana",
            "r",
            T0 + 150,
        ))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchDrop(_))),
        "{missing:?}"
    );
}

pub async fn a_quest_storm_awards_each_viewer_once<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "quest-storm", 5, 1, 900).await;
    // 40 viewers, each tapping 5 times at once with different rids.
    let tasks: Vec<_> = (0..40)
        .flat_map(|i| (0..5).map(move |k| (i, k)))
        .map(|(i, k)| {
            let store = Arc::clone(&store);
            let a = award(&id, "s3", &format!("v{i:02}"), &format!("r{k}"), T0 + 150);
            tokio::spawn(async move { (i, store.award(a).await.expect("award")) })
        })
        .collect();
    let mut won = [0u32; 40];
    for t in tasks {
        let (i, outcome) = t.await.expect("task");
        match outcome {
            AwardOutcome::Awarded { points: 50 } => won[i] += 1,
            AwardOutcome::AlreadyAwarded => {}
            other => panic!("v{i:02}: {other:?}"),
        }
    }
    assert!(won.iter().all(|n| *n == 1), "{won:?}");
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(f.leaderboard.len(), dropwire_core::claim::LEADERBOARD_SIZE);
    assert!(
        f.leaderboard.iter().all(|e| e.points == 50),
        "{:?}",
        f.leaderboard
    );
}

/// A quest for the first N (`limit`): 30 viewers at once, each twice with different rids,
/// for a limit of 7: exactly 7 viewers earn it, once each; the rest hear `Full`, and
/// nothing of theirs is recorded. A retried rid of a winner is answered alike; another
/// quest counts apart.
pub async fn a_quest_for_the_first_n_awards_exactly_n<S: Store>(store: Arc<S>) {
    let id = new_drop(&*store, "quest-first-n", 5, 1, 900).await;
    let limited = |viewer: &str, rid: &str, now: u64| QuestAward {
        limit: Some(7),
        ..award(&id, "s4", viewer, rid, now)
    };
    let tasks: Vec<_> = (0..30)
        .flat_map(|i| (0..2).map(move |k| (i, k)))
        .map(|(i, k)| {
            let store = Arc::clone(&store);
            let a = limited(&format!("v{i:02}"), &format!("r{k}"), T0 + 150);
            tokio::spawn(async move { (i, k, store.award(a).await.expect("award")) })
        })
        .collect();
    let mut won = [0u32; 30];
    let mut winners = Vec::new();
    let mut full = 0;
    for t in tasks {
        let (i, k, outcome) = t.await.expect("task");
        match outcome {
            AwardOutcome::Awarded { points: 50 } => {
                won[i] += 1;
                winners.push((i, k));
            }
            AwardOutcome::AlreadyAwarded => {}
            AwardOutcome::Full => full += 1,
            other => panic!("v{i:02}: {other:?}"),
        }
    }
    assert_eq!(won.iter().filter(|n| **n == 1).count(), 7, "{won:?}");
    assert!(won.iter().all(|n| *n <= 1), "{won:?}");
    assert_eq!(full, 46, "the 23 others hear full, both times");
    let f = store.figures(&id).await.expect("figures");
    assert_eq!((f.awards, f.leaderboard.len()), (7, 7));
    // A winner's rid again: the same answer, though the quest is full.
    let (i, k) = winners[0];
    assert_eq!(
        store
            .award(limited(&format!("v{i:02}"), &format!("r{k}"), T0 + 160))
            .await
            .expect("award"),
        AwardOutcome::Awarded { points: 50 }
    );
    assert_eq!(
        store
            .award(limited("late", "x", T0 + 160))
            .await
            .expect("award"),
        AwardOutcome::Full
    );
    // Outside the window it is closed, full or not; another quest counts apart.
    assert_eq!(
        store
            .award(limited("late", "y", T0 + 200))
            .await
            .expect("award"),
        AwardOutcome::Closed
    );
    let other = QuestAward {
        limit: Some(1),
        ..award(&id, "s5", "late", "z", T0 + 150)
    };
    assert_eq!(
        store.award(other).await.expect("award"),
        AwardOutcome::Awarded { points: 50 }
    );
}
