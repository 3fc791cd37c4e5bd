//! The feed: facts queued by the hub's hot paths (a claim, a hello, a sweep) and written in
//! batches, one transaction each, by one writer task. Pushing never waits.

use std::time::Duration;

use dropwire_core::Fact;
use dropwire_funnel::Ledger;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Batches of facts the feed holds at most; beyond that a push is dropped (and counted).
const QUEUE: usize = 65_536;
/// Facts written in one transaction at most.
const BATCH: usize = 1000;
/// Tries for one batch before it is given up (the reconciliation restores store facts).
const TRIES: u32 = 6;

enum Msg {
    Facts(Vec<Fact>),
    /// Answered once everything queued before it is written (or given up).
    Flush(oneshot::Sender<()>),
}

/// Where the hub hands facts to the ledger. Cheap to clone.
#[derive(Clone)]
pub struct Feed {
    tx: mpsc::Sender<Msg>,
    metrics: Metrics,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("queued", &(QUEUE - self.tx.capacity()))
            .finish()
    }
}

impl Feed {
    /// Starts the writer task on `ledger`.
    pub fn start(ledger: Ledger, metrics: Metrics) -> Feed {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(ledger, rx, metrics.clone()));
        Feed { tx, metrics }
    }

    /// Queues facts without waiting; a full queue drops them (counted as `dropped`).
    pub fn push(&self, facts: Vec<Fact>) {
        if facts.is_empty() {
            return;
        }
        let n = facts.len() as u64;
        match self.tx.try_send(Msg::Facts(facts)) {
            Ok(()) => self.metrics.ledger_backlog.inc(),
            Err(_) => {
                self.metrics
                    .ledger_facts
                    .with_label_values(&["dropped"])
                    .inc_by(n);
                tracing::warn!(
                    facts = n,
                    "ledger feed full: facts dropped (the store's reconcile restores claims)"
                );
            }
        }
    }

    /// Waits until everything pushed before this call is written, at most `within`.
    pub async fn flush(&self, within: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        let sent = tokio::time::timeout(within, self.tx.send(Msg::Flush(done))).await;
        matches!(sent, Ok(Ok(()))) && matches!(tokio::time::timeout(within, wait).await, Ok(Ok(())))
    }
}

async fn write(ledger: Ledger, mut rx: mpsc::Receiver<Msg>, metrics: Metrics) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut take = |msg: Msg, batch: &mut Vec<Fact>| match msg {
            Msg::Facts(facts) => {
                metrics.ledger_backlog.dec();
                batch.extend(facts);
            }
            Msg::Flush(done) => flushes.push(done),
        };
        take(first, &mut batch);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut batch),
                Err(_) => break,
            }
        }
        record(&ledger, &batch, &metrics).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes one batch, retrying with backoff; a batch that keeps failing is given up.
async fn record(ledger: &Ledger, batch: &[Fact], metrics: &Metrics) {
    if batch.is_empty() {
        return;
    }
    let count =
        |outcome: &str, n: u64| metrics.ledger_facts.with_label_values(&[outcome]).inc_by(n);
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=TRIES {
        match ledger.record(batch).await {
            Ok(new) => {
                count("recorded", new);
                count("duplicate", batch.len() as u64 - new);
                return;
            }
            Err(e) if attempt < TRIES => {
                tracing::warn!(error = %e, attempt, "ledger write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 3).min(Duration::from_secs(10));
            }
            Err(e) => {
                tracing::error!(error = %e, facts = batch.len(), "ledger write failed; batch given up");
                count("failed", batch.len() as u64);
            }
        }
    }
}
