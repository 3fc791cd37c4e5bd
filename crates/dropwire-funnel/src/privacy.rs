//! A viewer's data: everything the ledger holds of it (export), and erasure.
//!
//! Erasure replaces the viewer's id by a tombstone in every fact and waitlist entry (so
//! counts and sums stay right, but nothing links back to the person), clears what only
//! the person gave (contact, intent note, handle, consent), renames the facts whose id
//! named the viewer, and records `viewer.erased` under the tombstone — all in one
//! transaction.

use dropwire_core::{Fact, FactKind};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::facts::{COLUMNS, StoredFact, read_fact};
use crate::waitlist::WaitlistEntry;
use crate::{FunnelError, Ledger};

/// Everything the ledger holds of one viewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct ViewerExport {
    pub viewer_id: String,
    pub facts: Vec<StoredFact>,
    pub waitlist: Vec<WaitlistEntry>,
    /// Follow-up coupons handed to the viewer.
    pub coupons: Vec<crate::Coupon>,
    /// The passes the viewer earned, of every maker.
    pub passes: Vec<crate::Pass>,
}

/// What an erasure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub facts: u64,
    pub waitlist: u64,
}

/// Facts whose id names the viewer (so the id must change with it).
const NAMED_BY_VIEWER: [FactKind; 5] = [
    FactKind::ViewerAttended,
    FactKind::WaitlistJoined,
    FactKind::WaitlistUpdated,
    FactKind::CouponIssued,
    FactKind::QuestAwarded,
];

/// What a waitlist fact keeps after erasure: the segment (size, items), nothing personal.
fn scrubbed(detail: &Value) -> Value {
    let intent = detail.get("intent");
    json!({
        "intent": {
            "size": intent.and_then(|i| i.get("size")).cloned().unwrap_or(Value::Null),
            "items": intent.and_then(|i| i.get("items")).cloned().unwrap_or(json!([])),
        },
        "erased": true,
    })
}

impl Ledger {
    /// Every fact and waitlist entry of `viewer_id`.
    pub async fn export_viewer(&self, viewer_id: &str) -> Result<ViewerExport, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM facts WHERE viewer_id = $1 ORDER BY seq"
        ))
        .bind(viewer_id.to_owned())
        .fetch_all(&self.read)
        .await?;
        let facts = rows.iter().map(read_fact).collect::<Result<_, _>>()?;
        let drops = sqlx::query("SELECT drop_id FROM waitlist WHERE viewer_id = $1 ORDER BY seq")
            .bind(viewer_id.to_owned())
            .fetch_all(&self.read)
            .await?;
        let mut waitlist = Vec::new();
        for row in drops {
            let drop_id: String = row.try_get("drop_id")?;
            waitlist.extend(self.waitlist_entry(&drop_id, viewer_id).await?);
        }
        let codes =
            sqlx::query("SELECT maker, code FROM coupons WHERE viewer_id = $1 ORDER BY expires_ms")
                .bind(viewer_id.to_owned())
                .fetch_all(&self.read)
                .await?;
        let mut coupons = Vec::new();
        for row in codes {
            let (maker, code): (String, String) = (row.try_get("maker")?, row.try_get("code")?);
            coupons.extend(self.coupon(&maker, &code).await?);
        }
        Ok(ViewerExport {
            viewer_id: viewer_id.to_owned(),
            facts,
            waitlist,
            coupons,
            passes: self.passes_of(None, viewer_id).await?,
        })
    }

    /// Erases `viewer_id` (see the module doc); `tombstone` is the id its rows carry from
    /// now on. Erasing a viewer the ledger does not know records the tombstone all the same.
    pub async fn erase_viewer(
        &self,
        viewer_id: &str,
        tombstone: &str,
        now_ms: u64,
    ) -> Result<Erased, FunnelError> {
        let mut tx = self.write.begin().await?;
        let waitlist_facts =
            sqlx::query("SELECT seq, detail FROM facts WHERE viewer_id = $1 AND kind IN ($2, $3)")
                .bind(viewer_id.to_owned())
                .bind(FactKind::WaitlistJoined.as_str())
                .bind(FactKind::WaitlistUpdated.as_str())
                .fetch_all(&mut *tx)
                .await?;
        for row in waitlist_facts {
            let seq: i64 = row.try_get("seq")?;
            let detail: String = row.try_get("detail")?;
            let detail: Value = serde_json::from_str(&detail)
                .map_err(|e| FunnelError::corrupt(format!("fact {seq}"), e))?;
            sqlx::query("UPDATE facts SET detail = $1 WHERE seq = $2")
                .bind(scrubbed(&detail).to_string())
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        let named = NAMED_BY_VIEWER.map(FactKind::as_str);
        let renamed = sqlx::query(
            "UPDATE facts SET id = kind || ':' || COALESCE(drop_id, '') || ':' || $2 || ':' || CAST(seq AS TEXT), \
             viewer_id = $2 WHERE viewer_id = $1 AND kind IN ($3, $4, $5, $6)",
        )
        .bind(viewer_id.to_owned())
        .bind(tombstone.to_owned())
        .bind(named[0])
        .bind(named[1])
        .bind(named[2])
        .bind(named[3])
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let others = sqlx::query("UPDATE facts SET viewer_id = $2 WHERE viewer_id = $1")
            .bind(viewer_id.to_owned())
            .bind(tombstone.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let waitlist = sqlx::query(
            "UPDATE waitlist SET viewer_id = $2, handle = 'erased', note = NULL, contact = NULL, \
             marketing = 0 WHERE viewer_id = $1",
        )
        .bind(viewer_id.to_owned())
        .bind(tombstone.to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for table in [
            "timers",
            "coupons",
            "passes",
            "kpi_viewers",
            "kpi_claims",
            "kpi_purchases",
        ] {
            sqlx::query(&format!(
                "UPDATE {table} SET viewer_id = $2 WHERE viewer_id = $1"
            ))
            .bind(viewer_id.to_owned())
            .bind(tombstone.to_owned())
            .execute(&mut *tx)
            .await?;
        }
        let erased = Erased {
            facts: renamed + others,
            waitlist,
        };
        let counts = json!({"facts": erased.facts, "waitlist": erased.waitlist});
        crate::facts::insert(&mut tx, &[Fact::viewer_erased(tombstone, now_ms, counts)]).await?;
        tx.commit().await?;
        Ok(erased)
    }
}
