//! The coalesced figures of a drop: stock, leaderboard and viewer count.
//!
//! Every figure goes out under a [`Mark::Newer`] carrying a version (the claims and their
//! changes so far): on one node it is published when it differs from what was delivered
//! last; with a bus, every node reads the same figures and the bus never lets an older
//! figure follow a newer one. The viewer count is this node's alone, or with a bus the sum
//! of every node's report (`sequencer`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dropwire_core::protocol::{ServerMsg, StockItem};
use dropwire_store::{DropFigures, Mark};

use super::DropHub;
use super::relay::Resend;
use crate::encode::to_json;

/// The viewers of one drop on this node: now, and at most.
#[derive(Debug, Default)]
pub(super) struct NodeViewers {
    now: AtomicU64,
    peak: AtomicU64,
}

/// Viewer counts for `GET …/stats`.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct ViewerCounts {
    pub now: u64,
    pub peak: u64,
    pub unique: u64,
}

impl DropHub {
    /// Marks stock (and the leaderboard) as changed; published coalesced.
    pub fn stock_changed(&self) {
        self.stock_dirty.store(true, Ordering::Release);
        self.figures_changed.notify_one();
    }

    pub fn viewer_joined(&self, viewer_id: Option<&str>) {
        let now = self.viewers.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.viewers.peak.fetch_max(now, Ordering::Relaxed);
        self.sequencer.viewer_joined(viewer_id);
        self.figures_changed.notify_one();
    }

    pub fn viewer_left(&self) {
        self.touch();
        self.viewers.now.fetch_sub(1, Ordering::Relaxed);
        self.figures_changed.notify_one();
    }

    /// This node's viewers of the drop now.
    pub fn local_viewers(&self) -> u64 {
        self.viewers.now.load(Ordering::Relaxed)
    }

    /// This node's viewers, or with a bus every node's (as of this node's last report).
    pub fn viewer_counts(&self) -> ViewerCounts {
        let peak = self.viewers.peak.load(Ordering::Relaxed);
        self.sequencer.viewer_counts(self.local_viewers(), peak)
    }

    pub(super) async fn publish_figures(&self) {
        if self.stock_dirty.swap(false, Ordering::AcqRel) {
            match self.ctx.store.figures(&self.id).await {
                Ok(figures) => {
                    let version = version(&figures);
                    let mut sh = self.lock();
                    let stock: Vec<StockItem> = figures
                        .stock
                        .into_iter()
                        .filter(|s| sh.view.is_revealed(&s.sku))
                        .collect();
                    let revealed = stock.len() as u64;
                    // Alone, the hub compares with what it delivered last. With a bus, that
                    // is no guide (a hub loaded just now already reads the new figures): the
                    // bus compares with what was last published, by version and content.
                    // Never an empty `content`: figures that cannot be written (a bug,
                    // logged) are not sent.
                    if let Ok(content) = to_json("the stock figures", &stock) {
                        let mark = || newer("stock", version, revealed, content.clone());
                        self.publish(&mut sh, mark, |seq, ts| ServerMsg::Stock {
                            seq,
                            ts,
                            items: stock.clone(),
                        });
                    }
                    let top = &figures.leaderboard;
                    if let Ok(content) = to_json("the leaderboard", top) {
                        let mark = || newer("leaderboard", version, 0, content.clone());
                        self.publish(&mut sh, mark, |seq, ts| ServerMsg::Leaderboard {
                            seq,
                            ts,
                            top: top.clone(),
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(drop = %self.id, error = %e, "cannot read figures; will retry");
                    self.stock_dirty.store(true, Ordering::Release);
                }
            }
        }
        let count = self.local_viewers();
        if !self.sequencer.viewers_changed(count) {
            return;
        }
        // Each count is a frame to every viewer: a large audience hears it less often.
        let now = tokio::time::Instant::now();
        let early = {
            let mut sh = self.lock();
            let early = sh
                .viewers_at
                .is_some_and(|at| now < at + viewers_every(count));
            if !early {
                sh.viewers_at = Some(now);
            }
            early
        };
        if early {
            self.figures_changed.notify_one(); // come back at the next coalescing turn
            return;
        }
        self.sequencer.send_viewers(self, count).await;
    }
}

/// How often the viewer count may go out: four times a second up to 5,000 viewers, then
/// less often (once a second at 10,000, at most every 2 s).
fn viewers_every(count: u64) -> Duration {
    super::COALESCE * (count / 2500).clamp(1, 8) as u32
}

/// Grows with every claim, redemption, expiry and quest award: held + 2 × (redeemed +
/// expired) + awards.
fn version(f: &DropFigures) -> u64 {
    f.held + 2 * (f.redeemed + f.expired) + f.awards
}

fn newer(field: &'static str, version: u64, revealed: u64, content: String) -> (Mark, Resend) {
    let mark = Mark::Newer {
        field,
        version,
        revealed,
        content,
    };
    (mark, Resend::Nothing)
}
