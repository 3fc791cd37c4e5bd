//! The store as the hub sees it: every call timed (`dropwire_store_seconds{op}`) and every
//! backend failure counted (`dropwire_store_errors_total{op}`), whatever the backend.
//! Answers that are about the request (no such drop, not held, a conflict) are not errors.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use dropwire_core::{Claim, ClaimCode, ClaimOutcome, ControlEntry, DropId, DropRecord};
use dropwire_store::{
    AwardOutcome, ClaimRequest, CouponOutcome, CouponRequest, DropFigures, QuestAward, Store,
    StoreError,
};

use crate::metrics::Metrics;

/// Every [`Store`] operation, as its metric label.
pub const OPS: [&str; 16] = [
    "create_drop",
    "drop_record",
    "list_drops",
    "open_drops",
    "append_control",
    "claim",
    "redeem",
    "expire_due",
    "claims",
    "figures",
    "take_coupon",
    "award",
    "reserve_seq",
    "admit",
    "erase_viewer",
    "ping",
];

/// A [`Store`] that measures the one it wraps.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl MeteredStore {
    pub(crate) fn wrap(inner: Arc<dyn Store>, metrics: &Metrics) -> Arc<dyn Store> {
        for op in OPS {
            // Present at zero from the start: a dashboard's error rate is 0, not "no data".
            metrics.store_errors.with_label_values(&[op]).inc_by(0);
        }
        Arc::new(MeteredStore {
            inner,
            metrics: metrics.clone(),
        })
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .store_seconds
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result
            && e.is_unavailable()
        {
            self.metrics.store_errors.with_label_values(&[op]).inc();
        }
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn create_drop(&self, record: DropRecord) -> Result<(), StoreError> {
        self.timed("create_drop", self.inner.create_drop(record))
            .await
    }

    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, StoreError> {
        self.timed("drop_record", self.inner.drop_record(id)).await
    }

    async fn list_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        self.timed("list_drops", self.inner.list_drops()).await
    }

    async fn open_drops(&self) -> Result<Vec<DropRecord>, StoreError> {
        self.timed("open_drops", self.inner.open_drops()).await
    }

    async fn append_control(
        &self,
        id: &DropId,
        expected_len: usize,
        entry: ControlEntry,
    ) -> Result<Vec<ControlEntry>, StoreError> {
        let call = self.inner.append_control(id, expected_len, entry);
        self.timed("append_control", call).await
    }

    async fn claim(&self, req: ClaimRequest) -> Result<ClaimOutcome, StoreError> {
        self.timed("claim", self.inner.claim(req)).await
    }

    async fn redeem(&self, code: &ClaimCode, now_ms: u64) -> Result<Claim, StoreError> {
        self.timed("redeem", self.inner.redeem(code, now_ms)).await
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Claim>, StoreError> {
        self.timed("expire_due", self.inner.expire_due(now_ms))
            .await
    }

    async fn claims(&self, id: &DropId) -> Result<Vec<Claim>, StoreError> {
        self.timed("claims", self.inner.claims(id)).await
    }

    async fn figures(&self, id: &DropId) -> Result<DropFigures, StoreError> {
        self.timed("figures", self.inner.figures(id)).await
    }

    async fn take_coupon(&self, req: CouponRequest) -> Result<CouponOutcome, StoreError> {
        self.timed("take_coupon", self.inner.take_coupon(req)).await
    }

    async fn award(&self, award: QuestAward) -> Result<AwardOutcome, StoreError> {
        self.timed("award", self.inner.award(award)).await
    }

    async fn reserve_seq(&self, id: &DropId, n: u64) -> Result<u64, StoreError> {
        self.timed("reserve_seq", self.inner.reserve_seq(id, n))
            .await
    }

    async fn admit(&self, drop: &DropId, viewer_id: &str) -> Result<(), StoreError> {
        self.timed("admit", self.inner.admit(drop, viewer_id)).await
    }

    async fn erase_viewer(&self, viewer_id: &str, tombstone: &str) -> Result<u64, StoreError> {
        let call = self.inner.erase_viewer(viewer_id, tombstone);
        self.timed("erase_viewer", call).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }
}
