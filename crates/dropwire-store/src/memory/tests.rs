//! What a real disk cannot be made to do on demand in a test: fail a write, or stall while
//! callers keep coming. The store runs its real journal writer over these disks.

use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use dropwire_core::{ClaimOutcome, DropId};

use super::MemoryStore;
use crate::conformance::{fresh_id, record};
use crate::journal::{Disk, Journal, QUEUE};
use crate::{ClaimRequest, Store, StoreError};

const T0: u64 = 1_800_000_000_000;

/// A disk that fails every write and sync once `broken` is set; counts the bytes it took.
#[derive(Debug, Clone, Default)]
struct FlakyDisk {
    broken: Arc<AtomicBool>,
    written: Arc<Mutex<usize>>,
}

impl Write for FlakyDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk on fire"));
        }
        *self.written.lock().unwrap() += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Disk for FlakyDisk {
    fn sync(&mut self) -> std::io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("disk on fire"));
        }
        Ok(())
    }
    fn rotate(&mut self, _n: u64) -> std::io::Result<Self> {
        Ok(self.clone())
    }
}

/// A disk whose writes wait while the gate is closed, announcing each one that waits.
#[derive(Debug, Clone)]
struct GatedDisk {
    open: Arc<(Mutex<bool>, Condvar)>,
    waiting: Sender<()>,
}

impl GatedDisk {
    fn new() -> (GatedDisk, Receiver<()>) {
        let (waiting, rx) = channel();
        let disk = GatedDisk {
            open: Arc::new((Mutex::new(true), Condvar::new())),
            waiting,
        };
        (disk, rx)
    }

    fn set(&self, open: bool) {
        *self.open.0.lock().unwrap() = open;
        self.open.1.notify_all();
    }
}

impl Write for GatedDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().unwrap();
        if !*open {
            let _ = self.waiting.send(());
            while !*open {
                open = cv.wait(open).unwrap();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Disk for GatedDisk {
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn rotate(&mut self, _n: u64) -> std::io::Result<Self> {
        Ok(self.clone())
    }
}

fn req(drop: &DropId, viewer: &str, rid: &str) -> ClaimRequest {
    ClaimRequest {
        drop_id: drop.clone(),
        sku: "mug".into(),
        viewer_id: viewer.into(),
        handle: viewer.into(),
        rid: rid.into(),
        now_ms: T0,
        refusal: None,
        members_only: false,
        per_viewer_limit: None,
        draw_at_ms: None,
        ticket: None,
    }
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn a_failed_write_fails_the_store_and_nothing_more_is_written() {
    let disk = FlakyDisk::default();
    let store = MemoryStore::with_journal(Some(
        Journal::start(disk.clone(), true, QUEUE).expect("journal"),
    ));
    let id = fresh_id("flaky");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    assert!(matches!(
        store.claim(req(&id, "ana", "r")).await,
        Ok(ClaimOutcome::Granted(_))
    ));
    store.ping().await.expect("healthy");

    disk.broken.store(true, Ordering::SeqCst);
    let failed = store.claim(req(&id, "bo", "r")).await;
    assert!(
        matches!(failed, Err(StoreError::JournalFailed(_))),
        "{failed:?}"
    );
    // Every later refusal names the write failure that stopped the journal.
    let ping = store.ping().await.expect_err("failed");
    assert!(matches!(ping, StoreError::JournalFailed(_)), "{ping:?}");
    assert_eq!(
        ping.to_string(),
        "the journal failed and the store refuses writes until restarted: disk on fire"
    );
    assert!(ping.is_unavailable());

    // From now on every write is refused before it is applied, even with the disk back.
    disk.broken.store(false, Ordering::SeqCst);
    let written = *disk.written.lock().unwrap();
    let left = store.figures(&id).await.expect("figures").stock[0].left;
    let refused = store.claim(req(&id, "cy", "r")).await;
    assert!(
        matches!(refused, Err(StoreError::JournalFailed(_))),
        "{refused:?}"
    );
    assert!(matches!(
        store.reserve_seq(&id, 5).await,
        Err(StoreError::JournalFailed(_))
    ));
    assert_eq!(
        store.figures(&id).await.expect("figures").stock[0].left,
        left
    );
    assert!(
        store
            .claims(&id)
            .await
            .expect("claims")
            .iter()
            .all(|c| c.viewer_id != "cy")
    );
    assert_eq!(
        *disk.written.lock().unwrap(),
        written,
        "no write after a failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_busy_before_applying_anything() {
    let (disk, waiting) = GatedDisk::new();
    let store = MemoryStore::with_journal(Some(
        Journal::start(disk.clone(), true, 2).expect("journal"),
    ));
    let id = fresh_id("busy");
    store
        .create_drop(record(&id, 10, 1, 60))
        .await
        .expect("create");
    let slot = store.slot(&id).expect("slot");

    disk.set(false);
    // The writer takes the first claim and stalls on the disk.
    let mut pendings = Vec::new();
    let first = store
        .claim_locked(&slot, &req(&id, "v0", "r"))
        .expect("claim");
    pendings.push(first.expect("new").1);
    waiting
        .recv_timeout(Duration::from_secs(60))
        .expect("the writer waits");

    // A retry of a granted rid answers only once the grant is on disk (its barrier takes
    // a place in the queue).
    let retry = store.claim(req(&id, "v0", "r"));
    let mut retry = pin!(retry);
    assert!(poll_once(retry.as_mut()).is_pending());

    let queued = store
        .claim_locked(&slot, &req(&id, "v1", "r"))
        .expect("claim");
    pendings.push(queued.expect("new").1);
    let busy = store.claim(req(&id, "v2", "r")).await;
    assert!(matches!(busy, Err(StoreError::Busy)), "{busy:?}");
    let f = store.figures(&id).await.expect("figures");
    assert_eq!(
        (f.stock[0].left, f.held),
        (8, 2),
        "the refused claim took nothing"
    );

    disk.set(true);
    for p in pendings {
        p.expect("journaled").durable().await.expect("durable");
    }
    let again = retry.await.expect("retry");
    let ClaimOutcome::Granted(c) = again else {
        panic!("{again:?}")
    };
    assert_eq!((c.viewer_id.as_str(), c.rank), ("v0", 0));
    // With room again, the refused viewer may claim (a Busy answer remembers nothing).
    assert!(matches!(
        store.claim(req(&id, "v2", "r")).await,
        Ok(ClaimOutcome::Granted(_))
    ));
}

#[tokio::test]
async fn sweeps_expire_exactly_the_holds_due_across_drops() {
    let store = MemoryStore::with_journal(None);
    let mut drops = Vec::new();
    for i in 0..30u32 {
        let id = fresh_id("due");
        // Drop i holds for (i % 10 + 1) × 10 s; two claims, the second 1 s later.
        store
            .create_drop(record(&id, 10, 1, (i % 10 + 1) * 10))
            .await
            .expect("create");
        for (viewer, at) in [("ana", T0), ("bo", T0 + 1000)] {
            let mut r = req(&id, viewer, "r");
            r.now_ms = at;
            store.claim(r).await.expect("claim");
        }
        drops.push(id);
    }
    // Redeeming a drop's earliest hold moves it to its next one in the index.
    let first = store.claims(&drops[0]).await.expect("claims")[0].clone();
    store.redeem(&first.code, T0 + 5).await.expect("redeem");
    assert!(
        store
            .expire_due(T0 + 9_999)
            .await
            .expect("sweep")
            .is_empty()
    );
    let mut expired = 0;
    for step in 1..=11u64 {
        let now = T0 + step * 10_000;
        let got = store.expire_due(now).await.expect("sweep");
        for c in &got {
            assert!(
                c.hold_until_ms <= now && c.hold_until_ms > now - 10_000,
                "{c:?}"
            );
        }
        expired += got.len();
        assert!(store.expire_due(now).await.expect("sweep").is_empty());
    }
    assert_eq!(expired, 59, "every hold but the redeemed one");
    assert_eq!(store.residency().holds, 0);
}
