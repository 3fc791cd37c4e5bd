//! The nurture schedule's durable timers (written with each `claim.redeemed`), fired once
//! across nodes: a timer is leased like an outbox message, and firing it — marking it done
//! and recording `nurture.offer` (or `nurture.skipped`) — is one transaction that only the
//! first node to try completes.

use dropwire_core::Fact;
use dropwire_core::followup::NurtureStep;
use sqlx::Row;

use crate::db::{ms, unms};
use crate::{Backend, FunnelError, Ledger};

/// A timer that fell due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub id: String,
    pub maker: String,
    pub drop_id: String,
    pub viewer_id: String,
    pub step: NurtureStep,
    pub due_ms: u64,
}

impl Ledger {
    /// The maker's nurture schedule (drops without their own use it).
    pub async fn set_nurture(&self, maker: &str, steps: &[NurtureStep]) -> Result<(), FunnelError> {
        let value = serde_json::to_string(steps).map_err(|e| FunnelError::corrupt("nurture", e))?;
        sqlx::query(
            "INSERT INTO settings (maker, key, value) VALUES ($1, 'nurture', $2) \
             ON CONFLICT (maker, key) DO UPDATE SET value = $2",
        )
        .bind(maker.to_owned())
        .bind(value)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn nurture(&self, maker: &str) -> Result<Vec<NurtureStep>, FunnelError> {
        let row = sqlx::query("SELECT value FROM settings WHERE maker = $1 AND key = 'nurture'")
            .bind(maker.to_owned())
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => serde_json::from_str(&r.try_get::<String, _>("value")?)
                .map_err(|e| FunnelError::corrupt("nurture", e)),
            None => Ok(Vec::new()),
        }
    }

    /// Leases up to `n` timers due at `now_ms` until `lease_until_ms`.
    pub async fn lease_timers(
        &self,
        n: u32,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> Result<Vec<DueTimer>, FunnelError> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT id, maker, drop_id, viewer_id, step, due_ms FROM timers WHERE state = 'pending' \
             AND due_ms <= $1 AND lease_until_ms < $1 ORDER BY due_ms LIMIT {n}{skip_locked}"
        ))
        .bind(ms(now_ms))
        .fetch_all(&mut *tx)
        .await?;
        let mut due = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            sqlx::query("UPDATE timers SET lease_until_ms = $1 WHERE id = $2")
                .bind(ms(lease_until_ms))
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
            let step: String = row.try_get("step")?;
            due.push(DueTimer {
                step: serde_json::from_str(&step).map_err(|e| FunnelError::corrupt(&id, e))?,
                maker: row.try_get("maker")?,
                drop_id: row.try_get("drop_id")?,
                viewer_id: row.try_get("viewer_id")?,
                due_ms: unms(row.try_get("due_ms")?),
                id,
            });
        }
        tx.commit().await?;
        Ok(due)
    }

    /// Whether the viewer agreed to hear from `maker` (its latest waitlist entry with the
    /// maker's drops says so).
    pub async fn consented(&self, maker: &str, viewer_id: &str) -> Result<bool, FunnelError> {
        let _ = maker; // one maker per ledger until makers are tenants
        let row = sqlx::query(
            "SELECT marketing FROM waitlist WHERE viewer_id = $1 ORDER BY updated_ms DESC LIMIT 1",
        )
        .bind(viewer_id.to_owned())
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>("marketing")? != 0,
            None => false,
        })
    }

    /// Fires a leased timer: offered, or skipped for `skipped`. Returns `false` if it had
    /// fired already (another node, or a retry), in which case nothing is recorded.
    pub async fn fire_timer(
        &self,
        timer: &DueTimer,
        skipped: Option<&str>,
        now_ms: u64,
    ) -> Result<bool, FunnelError> {
        let mut tx = self.write.begin().await?;
        let won = sqlx::query("UPDATE timers SET state = $1 WHERE id = $2 AND state = 'pending'")
            .bind(if skipped.is_some() {
                "skipped"
            } else {
                "fired"
            })
            .bind(timer.id.clone())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if won == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let fact = Fact {
            maker: timer.maker.clone(),
            ..Fact::nurture(
                &timer.id,
                &timer.drop_id,
                &timer.viewer_id,
                &timer.step,
                skipped,
                now_ms,
            )
        };
        crate::facts::insert(&mut tx, &[fact]).await?;
        tx.commit().await?;
        Ok(true)
    }
}
