//! The suite's fixtures: fresh drop ids, a drop record, claim requests, the time base.

use dropwire_core::{DropId, DropRecord, DropSpec};
use serde_json::json;

use crate::{ClaimRequest, Store};

pub(super) const T0: u64 = 1_800_000_000_000;
/// A time base before every hold of the other tests (see `an_expired_viewer_may_claim_again`).
pub(super) const EARLY: u64 = T0 - 10_000_000;

// Holds: the tests that sweep (`expire_due`) up to T0 + 60 s use 60 s holds; every other
// test uses 900 s holds, which no sweep in the suite reaches.

/// A fresh drop id no other test uses.
pub fn fresh_id(name: &str) -> DropId {
    let r: [u8; 4] = crate::random_bytes().unwrap_or([0; 4]);
    let suffix: String = r.iter().map(|b| format!("{b:02x}")).collect();
    DropId::parse(&format!(
        "{}-{suffix}",
        name.replace('_', "-").chars().take(40).collect::<String>()
    ))
    .expect("valid id")
}

/// A drop with SKU `mug` (`stock`, `limit`) and `jug` (5, 1), holds of `hold_s`.
pub fn record(id: &DropId, stock: u32, limit: u32, hold_s: u32) -> DropRecord {
    let spec: DropSpec = serde_json::from_value(json!({
        "id": id.as_str(), "title": "Conformance", "hold_s": hold_s,
        "inventory": [
            {"sku": "mug", "name": "Mug", "price_cents": 3400, "stock": stock, "per_viewer_limit": limit},
            {"sku": "jug", "name": "Jug", "price_cents": 2900, "stock": 5, "per_viewer_limit": 1}
        ],
        "script": {"duration_s": 600, "cues": [{"at_s": 0, "type": "reveal", "sku": "mug"}, {"at_s": 600, "type": "close"}]}
    }))
    .expect("valid spec");
    DropRecord {
        id: id.clone(),
        spec,
        obs_key: "key".into(),
        created_ms: T0,
        log: Vec::new(),
        recipe: None,
        maker: "default".into(),
    }
}

pub(super) async fn new_drop<S: Store + ?Sized>(
    store: &S,
    name: &str,
    stock: u32,
    limit: u32,
    hold_s: u32,
) -> DropId {
    let id = fresh_id(name);
    store
        .create_drop(record(&id, stock, limit, hold_s))
        .await
        .expect("create");
    id
}

/// `viewer` (handle `@viewer`) asks for one unit of `sku` with request id `rid`.
pub fn req(drop: &DropId, sku: &str, viewer: &str, rid: &str, now_ms: u64) -> ClaimRequest {
    ClaimRequest {
        drop_id: drop.clone(),
        sku: sku.into(),
        viewer_id: viewer.into(),
        handle: format!("@{viewer}"),
        rid: rid.into(),
        now_ms,
        refusal: None,
        members_only: false,
        per_viewer_limit: None,
        draw_at_ms: None,
        ticket: None,
    }
}
