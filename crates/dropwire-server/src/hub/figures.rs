//! The coalesced figures of a drop: stock, leaderboard and viewer count.
//!
//! On one node they are published when they differ from what was published last. With
//! Redis, every node reads the same figures; each publication carries a version (the claims
//! and their changes so far), so the bus never lets an older figure follow a newer one,
//! and the viewer count is the sum of every node's report.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dropwire_core::protocol::{ServerMsg, StockItem};
use dropwire_store::{DropFigures, Mark};

use super::DropHub;
use crate::encode::to_json;
use crate::relay::Resend;

/// Viewer figures of one drop on this node.
#[derive(Debug, Default)]
pub(super) struct Audiences {
    pub(super) now: AtomicU64,
    peak: AtomicU64,
    anonymous_total: AtomicU64,
    known: Mutex<HashSet<String>>,
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
        let now = self.audiences.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.audiences.peak.fetch_max(now, Ordering::Relaxed);
        if let Some(relay) = &self.relay {
            // Unique viewers are counted in Redis over every node (a HyperLogLog); this
            // node keeps no set of its own.
            relay.viewer_joined(viewer_id);
        } else if let Some(id) = viewer_id {
            let mut known = crate::sync::lock(&self.audiences.known);
            known.insert(id.to_owned());
        } else {
            self.audiences
                .anonymous_total
                .fetch_add(1, Ordering::Relaxed);
        }
        self.figures_changed.notify_one();
    }

    pub fn viewer_left(&self) {
        self.touch();
        self.audiences.now.fetch_sub(1, Ordering::Relaxed);
        self.figures_changed.notify_one();
    }

    /// This node's viewers of the drop now.
    pub fn local_viewers(&self) -> u64 {
        self.audiences.now.load(Ordering::Relaxed)
    }

    /// This node's viewers, or with Redis every node's (as of this node's last report).
    pub fn viewer_counts(&self) -> ViewerCounts {
        if let Some(totals) = self.relay.as_ref().and_then(|r| r.totals()) {
            return ViewerCounts {
                now: totals.now,
                peak: totals.peak,
                unique: totals.unique,
            };
        }
        let known = crate::sync::lock(&self.audiences.known).len() as u64;
        ViewerCounts {
            now: self.audiences.now.load(Ordering::Relaxed),
            peak: self.audiences.peak.load(Ordering::Relaxed),
            unique: known + self.audiences.anonymous_total.load(Ordering::Relaxed),
        }
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
                    // With a bus, what this node last delivered is no guide (a hub loaded
                    // just now already reads the new figures): Redis compares with what was
                    // last published, by version and content.
                    let bus = self.relay.is_some();
                    if bus || stock != sh.stock {
                        if !bus {
                            sh.stock = stock.clone(); // with a bus, `ingest` keeps it
                        }
                        // Never an empty `content`: figures that cannot be written (a bug,
                        // logged) are not sent.
                        if let Ok(content) = to_json("the stock figures", &stock) {
                            let mark = || newer("stock", version, revealed, content);
                            self.publish(&mut sh, mark, |seq, ts| ServerMsg::Stock {
                                seq,
                                ts,
                                items: stock.clone(),
                            });
                        }
                    }
                    if bus || figures.leaderboard != sh.leaderboard {
                        if !bus {
                            sh.leaderboard = figures.leaderboard.clone();
                        }
                        let top = &figures.leaderboard;
                        if let Ok(content) = to_json("the leaderboard", top) {
                            let mark = || newer("leaderboard", version, 0, content);
                            self.publish(&mut sh, mark, |seq, ts| ServerMsg::Leaderboard {
                                seq,
                                ts,
                                top: figures.leaderboard.clone(),
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(drop = %self.id, error = %e, "cannot read figures; will retry");
                    self.stock_dirty.store(true, Ordering::Release);
                }
            }
        }
        let count = self.audiences.now.load(Ordering::Relaxed);
        let changed = match &self.relay {
            Some(relay) => relay.needs_report(count),
            None => count != self.lock().viewers_published,
        };
        if !changed {
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
        if let Some(relay) = &self.relay {
            // Redis sums every node's viewers and publishes the total when it changed.
            relay.report(self, count, false, false).await;
            return;
        }
        let mut sh = self.lock();
        sh.viewers_published = count;
        let mark = || (Mark::Always, Resend::Nothing);
        self.publish(&mut sh, mark, |seq, ts| ServerMsg::Viewers {
            seq,
            ts,
            count,
        });
    }
}

/// How often the viewer count may go out: four times a second up to 5,000 viewers, then
/// less often (once a second at 10,000, at most every 2 s).
fn viewers_every(count: u64) -> Duration {
    super::COALESCE * (count / 2500).clamp(1, 8) as u32
}

/// Grows with every claim, redemption and expiry: held + 2 × (redeemed + expired).
fn version(f: &DropFigures) -> u64 {
    f.held + 2 * (f.redeemed + f.expired)
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
