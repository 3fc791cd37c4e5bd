//! The waitlist: one entry per viewer and drop, joined or updated in the same transaction
//! as its fact.

use dropwire_core::Fact;
use dropwire_core::waitlist::{Consent, Intent, WaitlistJoin};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

/// One viewer on a drop's waitlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct WaitlistEntry {
    pub drop_id: String,
    pub viewer_id: String,
    pub handle: String,
    /// 1 for the first viewer who joined; an update keeps the place.
    pub position: u64,
    pub intent: Intent,
    pub consent: Consent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    pub joined_ms: u64,
    pub updated_ms: u64,
}

/// What a join came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// `true` for a first join, `false` for an update of an entry.
    pub created: bool,
    pub entry: WaitlistEntry,
}

const ENTRY: &str =
    "seq, drop_id, viewer_id, handle, size, items, note, marketing, contact, joined_ms, updated_ms";

fn read_entry(row: &AnyRow, position: u64) -> Result<WaitlistEntry, FunnelError> {
    let drop_id: String = row.try_get("drop_id")?;
    let items: String = row.try_get("items")?;
    let items = serde_json::from_str(&items)
        .map_err(|e| FunnelError::corrupt(format!("waitlist of {drop_id}"), e))?;
    let marketing: i64 = row.try_get("marketing")?;
    Ok(WaitlistEntry {
        viewer_id: row.try_get("viewer_id")?,
        handle: row.try_get("handle")?,
        position,
        intent: Intent {
            size: row.try_get("size")?,
            items,
            note: row.try_get("note")?,
        },
        consent: Consent {
            marketing: marketing != 0,
        },
        contact: row.try_get("contact")?,
        joined_ms: unms(row.try_get("joined_ms")?),
        updated_ms: unms(row.try_get("updated_ms")?),
        drop_id,
    })
}

impl Ledger {
    /// Joins `viewer` to the drop's waitlist, or updates its entry (intent, consent,
    /// contact; the place in line is kept), recording `waitlist.joined` or
    /// `waitlist.updated` in the same transaction. `unique` tells this update's fact from
    /// others (a ULID). The caller has validated `join` against the drop.
    pub async fn join_waitlist(
        &self,
        drop_id: &str,
        viewer_id: &str,
        handle: &str,
        join: &WaitlistJoin,
        unique: &str,
        now_ms: u64,
    ) -> Result<Joined, FunnelError> {
        let maker = dropwire_core::funnel::DEFAULT_MAKER;
        self.join_waitlist_by(maker, drop_id, viewer_id, handle, join, unique, now_ms)
            .await
    }

    /// [`Ledger::join_waitlist`] of a drop of `maker` (its facts are that maker's).
    #[allow(clippy::too_many_arguments)]
    pub async fn join_waitlist_by(
        &self,
        maker: &str,
        drop_id: &str,
        viewer_id: &str,
        handle: &str,
        join: &WaitlistJoin,
        unique: &str,
        now_ms: u64,
    ) -> Result<Joined, FunnelError> {
        let intent = &join.intent;
        let items = serde_json::to_string(&intent.items)
            .map_err(|e| FunnelError::corrupt("waitlist items", e))?;
        let mut tx = self.write.begin().await?;
        // One statement inserts or updates, so two joins at once cannot both insert.
        let row = sqlx::query(
            "INSERT INTO waitlist (drop_id, viewer_id, handle, size, items, note, marketing, contact, joined_ms, updated_ms, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1) \
             ON CONFLICT (drop_id, viewer_id) DO UPDATE SET handle = $3, size = $4, items = $5, note = $6, \
             marketing = $7, contact = $8, updated_ms = $9, revision = waitlist.revision + 1 \
             RETURNING seq, revision",
        )
        .bind(drop_id.to_owned())
        .bind(viewer_id.to_owned())
        .bind(handle.to_owned())
        .bind(intent.size.clone())
        .bind(items)
        .bind(intent.note.clone())
        .bind(i64::from(join.consent.marketing))
        .bind(join.contact.clone())
        .bind(ms(now_ms))
        .fetch_one(&mut *tx)
        .await?;
        let seq: i64 = row.try_get("seq")?;
        let created = row.try_get::<i64, _>("revision")? == 1;
        // Facts carry the intent, and whether there is consent, never the contact itself.
        let detail = json!({"intent": intent, "consent": join.consent, "has_contact": join.contact.is_some()});
        let fact = if created {
            Fact::waitlist_joined(drop_id, viewer_id, now_ms, detail)
        } else {
            Fact::waitlist_updated(drop_id, viewer_id, unique, now_ms, detail)
        }
        .by(maker);
        crate::facts::insert(&mut tx, std::slice::from_ref(&fact)).await?;
        let position: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM waitlist WHERE drop_id = $1 AND seq <= $2")
                .bind(drop_id.to_owned())
                .bind(seq)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let entry = sqlx::query(&format!("SELECT {ENTRY} FROM waitlist WHERE seq = $1"))
            .bind(seq)
            .fetch_one(&mut *tx)
            .await?;
        let entry = read_entry(&entry, unms(position))?;
        tx.commit().await?;
        Ok(Joined { created, entry })
    }

    /// Every entry of a drop's waitlist, first joined first.
    pub async fn waitlist(&self, drop_id: &str) -> Result<Vec<WaitlistEntry>, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY} FROM waitlist WHERE drop_id = $1 ORDER BY seq"
        ))
        .bind(drop_id.to_owned())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .zip(1..)
            .map(|(row, position)| read_entry(row, position))
            .collect()
    }

    /// One viewer's entry on a drop's waitlist, if it joined.
    pub async fn waitlist_entry(
        &self,
        drop_id: &str,
        viewer_id: &str,
    ) -> Result<Option<WaitlistEntry>, FunnelError> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRY}, (SELECT COUNT(*) FROM waitlist o WHERE o.drop_id = w.drop_id AND o.seq <= w.seq) AS position \
             FROM waitlist w WHERE drop_id = $1 AND viewer_id = $2"
        ))
        .bind(drop_id.to_owned())
        .bind(viewer_id.to_owned())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            let position: i64 = r.try_get("position")?;
            read_entry(&r, unms(position))
        })
        .transpose()
    }

    /// Every viewer on a drop's waitlist (to admit them to its early-access segment).
    pub async fn waitlisted(&self, drop_id: &str) -> Result<Vec<String>, FunnelError> {
        let rows = sqlx::query("SELECT viewer_id FROM waitlist WHERE drop_id = $1 ORDER BY seq")
            .bind(drop_id.to_owned())
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| r.try_get("viewer_id").map_err(FunnelError::from))
            .collect()
    }
}
