//! What a viewer's passes grant it in a drop, applied as it says hello on the drop's
//! WebSocket ([`apply_passes`]): early access joins the drop's early-access segment before
//! the welcome, and a higher per-viewer limit goes with the connection's claims.
//!
//! Most makers have no pass rule that grants anything, and a reconnect storm says hello
//! thousands of times a second: whether a maker has such a rule is cached for
//! [`RULES_TTL`] ([`GrantingMakers`]), so a hello costs a ledger read only in a maker's
//! drops where a pass could grant something. A rule made or deleted through this node is
//! seen at once; through another node, within [`RULES_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::AppState;
use crate::sync::lock;

/// How long whether a maker has a granting rule is reused.
pub const RULES_TTL: Duration = Duration::from_secs(2);
/// Makers remembered at most (the cache is emptied when full).
const CACHE_MAX: usize = 10_000;

/// Per maker: whether any of its pass rules grants something, and when that was read.
#[derive(Debug, Default)]
pub struct GrantingMakers(Mutex<HashMap<String, (bool, Instant)>>);

impl GrantingMakers {
    fn get(&self, maker: &str) -> Option<bool> {
        let cache = lock(&self.0);
        let (grants, at) = cache.get(maker)?;
        (at.elapsed() < RULES_TTL).then_some(*grants)
    }

    fn put(&self, maker: &str, grants: bool) {
        let mut cache = lock(&self.0);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(maker.to_owned(), (grants, Instant::now()));
    }

    /// Forgets what is known of `maker` (one of its rules was just made or deleted).
    pub fn forget(&self, maker: &str) {
        lock(&self.0).remove(maker);
    }
}

/// Applies the grants of the passes `viewer_id` holds of the drop's maker, as the viewer
/// says hello (so a holder is in the segment before its welcome): early access admits it
/// to the drop's early-access segment, and the highest `per_viewer_limit` is returned for
/// its claims on this connection. A ledger that cannot answer grants nothing (the join
/// goes on).
pub(crate) async fn apply_passes(
    state: &AppState,
    hub: &crate::hub::DropHub,
    viewer_id: &str,
) -> Option<u32> {
    let record = hub.record();
    let ledger = state.ledger().ok()?;
    let maker = record.maker.as_str();
    let granting = match state.granting_makers.get(maker) {
        Some(known) => known,
        None => match ledger.pass_rules(maker).await {
            Ok(rules) => {
                let any = rules
                    .iter()
                    .any(|r| r.grants.early_access || r.grants.per_viewer_limit.is_some());
                state.granting_makers.put(maker, any);
                any
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read a maker's pass rules");
                return None;
            }
        },
    };
    if !granting {
        return None;
    }
    let held = match ledger.held_grants(maker, viewer_id).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "could not read a viewer's passes");
            return None;
        }
    };
    if held.early_access
        && record.spec.early_access_s > 0
        && let Err(e) = state.store.admit(&hub.id, viewer_id).await
    {
        tracing::warn!(error = %e, drop = %hub.id, "could not admit a pass holder");
    }
    held.per_viewer_limit
}
