//! Webhook endpoints and their deliveries, as the ledger keeps them. Messages enter the
//! outbox in the transaction of the fact they announce (`consequences`); delivery workers on
//! any node lease due messages ([`Ledger::lease_due`], `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so each message goes out from one node at a time; a lease a dead node held
//! runs out and the message is taken again) and record each attempt ([`Ledger::finish`]).

use dropwire_core::Fact;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{ms, unms};
use crate::facts::{COLUMNS, StoredFact, read_fact};
use crate::{Backend, FunnelError, Ledger};

/// An endpoint as the API shows it (never with its secret, but at creation and rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub id: String,
    pub maker: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed, if the last one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since_ms: Option<u64>,
    pub created_ms: u64,
}

/// Where and how an endpoint's messages go now: its URL, and the secrets that sign them
/// (the current one, and during a rotation the previous one too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub secrets: Vec<String>,
    pub enabled: bool,
    pub failing_since_ms: Option<u64>,
}

/// What may change on an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    pub url: Option<String>,
    #[cfg_attr(feature = "utoipa", schema(
        value_type = Option<Vec<dropwire_core::funnel::EventName>>,
        min_items = 1,
        max_items = 50
    ))]
    pub events: Option<Vec<String>>,
    #[cfg_attr(feature = "utoipa", schema(max_length = 500))]
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (its failure streak starts over).
    pub enabled: Option<bool>,
}

/// A message leased for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Leased {
    pub seq: i64,
    pub msg_id: String,
    pub endpoint_id: String,
    pub attempts: u32,
    /// The fact as it stands now (erasure may have changed it since it was recorded).
    pub fact: StoredFact,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered { status: u16 },
    /// Try again at `next_ms`.
    Retry {
        status: Option<u16>,
        error: String,
        next_ms: u64,
    },
    /// Out of tries (or the endpoint is gone): the dead letter list.
    Dead { status: Option<u16>, error: String },
}

/// One attempt, as the deliveries list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Attempt {
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// One message to one endpoint, with its attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub msg_id: String,
    pub event: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub next_ms: u64,
    pub created_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_ms: Option<u64>,
    pub tries: Vec<Attempt>,
}

const ENDPOINT: &str = "id, maker, url, events, description, disabled_ms, disabled_reason, failing_since_ms, created_ms";

fn read_endpoint(row: &AnyRow) -> Result<Endpoint, FunnelError> {
    let id: String = row.try_get("id")?;
    let events: String = row.try_get("events")?;
    let disabled_ms: Option<i64> = row.try_get("disabled_ms")?;
    Ok(Endpoint {
        events: serde_json::from_str(&events).map_err(|e| FunnelError::corrupt(&id, e))?,
        maker: row.try_get("maker")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        enabled: disabled_ms.is_none(),
        disabled_ms: disabled_ms.map(unms),
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since_ms: row.try_get::<Option<i64>, _>("failing_since_ms")?.map(unms),
        created_ms: unms(row.try_get("created_ms")?),
        id,
    })
}

fn json_list(events: &[String]) -> String {
    serde_json::Value::from(events.to_vec()).to_string()
}

impl Ledger {
    /// A new endpoint of `maker` signing with `secret`.
    pub async fn create_endpoint(
        &self,
        maker: &str,
        url: &str,
        events: &[String],
        description: &str,
        secret: &str,
        now_ms: u64,
    ) -> Result<Endpoint, FunnelError> {
        let id = format!("ep_{}", ulid::Ulid::new());
        sqlx::query(
            "INSERT INTO endpoints (id, maker, url, events, description, secret, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.clone())
        .bind(maker.to_owned())
        .bind(url.to_owned())
        .bind(json_list(events))
        .bind(description.to_owned())
        .bind(secret.to_owned())
        .bind(ms(now_ms))
        .execute(&self.write)
        .await?;
        self.endpoint(maker, &id)
            .await?
            .ok_or_else(|| FunnelError::corrupt(id, "vanished after insert"))
    }

    /// `maker`'s endpoints, oldest first.
    pub async fn endpoints(&self, maker: &str) -> Result<Vec<Endpoint>, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT} FROM endpoints WHERE maker = $1 ORDER BY created_ms, id"
        ))
        .bind(maker.to_owned())
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(read_endpoint).collect()
    }

    /// One endpoint of `maker` (another maker's is `None`).
    pub async fn endpoint(&self, maker: &str, id: &str) -> Result<Option<Endpoint>, FunnelError> {
        let row = sqlx::query(&format!(
            "SELECT {ENDPOINT} FROM endpoints WHERE maker = $1 AND id = $2"
        ))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(read_endpoint).transpose()
    }

    /// Where `id`'s messages go at `now_ms`, and what signs them.
    pub async fn target(&self, id: &str, now_ms: u64) -> Result<Option<Target>, FunnelError> {
        let row = sqlx::query(
            "SELECT url, secret, old_secret, old_secret_until_ms, disabled_ms, failing_since_ms FROM endpoints WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let until: Option<i64> = row.try_get("old_secret_until_ms")?;
        let previous: Option<String> = row.try_get("old_secret")?;
        let mut secrets = vec![row.try_get("secret")?];
        secrets.extend(previous.filter(|_| until.is_some_and(|u| unms(u) > now_ms)));
        Ok(Some(Target {
            url: row.try_get("url")?,
            secrets,
            enabled: row.try_get::<Option<i64>, _>("disabled_ms")?.is_none(),
            failing_since_ms: row.try_get::<Option<i64>, _>("failing_since_ms")?.map(unms),
        }))
    }

    /// Applies `patch`; `None` if `maker` has no such endpoint.
    pub async fn update_endpoint(
        &self,
        maker: &str,
        id: &str,
        patch: &EndpointPatch,
        now_ms: u64,
    ) -> Result<Option<Endpoint>, FunnelError> {
        if self.endpoint(maker, id).await?.is_none() {
            return Ok(None);
        }
        let mut tx = self.write.begin().await?;
        let set = |column: &str, tx_sql: &str| {
            format!("UPDATE endpoints SET {column} = {tx_sql} WHERE id = $2")
        };
        if let Some(url) = &patch.url {
            sqlx::query(&set("url", "$1"))
                .bind(url.clone())
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(events) = &patch.events {
            sqlx::query(&set("events", "$1"))
                .bind(json_list(events))
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(d) = &patch.description {
            sqlx::query(&set("description", "$1"))
                .bind(d.clone())
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        if patch.enabled == Some(true) {
            sqlx::query("UPDATE endpoints SET disabled_ms = NULL, disabled_reason = NULL, failing_since_ms = NULL WHERE id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        } else if patch.enabled == Some(false) {
            sqlx::query("UPDATE endpoints SET disabled_ms = $1, disabled_reason = 'disabled by the maker' WHERE id = $2 AND disabled_ms IS NULL")
                .bind(ms(now_ms))
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.endpoint(maker, id).await
    }

    /// Deletes an endpoint and its messages; `false` if `maker` has no such endpoint.
    pub async fn delete_endpoint(&self, maker: &str, id: &str) -> Result<bool, FunnelError> {
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query("DELETE FROM endpoints WHERE maker = $1 AND id = $2")
            .bind(maker.to_owned())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone > 0 {
            sqlx::query("DELETE FROM attempts WHERE outbox_seq IN (SELECT seq FROM outbox WHERE endpoint_id = $1)")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM outbox WHERE endpoint_id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// A new secret for `id`; the old one keeps signing until `old_until_ms`.
    pub async fn rotate_secret(
        &self,
        maker: &str,
        id: &str,
        secret: &str,
        old_until_ms: u64,
    ) -> Result<bool, FunnelError> {
        let changed = sqlx::query(
            "UPDATE endpoints SET old_secret = secret, old_secret_until_ms = $1, secret = $2 WHERE maker = $3 AND id = $4",
        )
        .bind(ms(old_until_ms))
        .bind(secret.to_owned())
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// Enabled endpoints with messages due at `now_ms` and not leased, with how many.
    pub async fn due_endpoints(&self, now_ms: u64) -> Result<Vec<(String, u64)>, FunnelError> {
        let rows = sqlx::query(
            "SELECT o.endpoint_id AS id, COUNT(*) AS n FROM outbox o JOIN endpoints e ON e.id = o.endpoint_id \
             WHERE o.state = 'pending' AND o.next_ms <= $1 AND o.lease_until_ms < $1 AND e.disabled_ms IS NULL \
             GROUP BY o.endpoint_id",
        )
        .bind(ms(now_ms))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, unms(r.try_get("n")?))))
            .collect()
    }

    /// Leases up to `n` due messages of one endpoint until `lease_until_ms`.
    pub async fn lease_due(
        &self,
        endpoint_id: &str,
        n: u32,
        now_ms: u64,
        lease_until_ms: u64,
    ) -> Result<Vec<Leased>, FunnelError> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT seq, msg_id, attempts, fact_seq FROM outbox WHERE endpoint_id = $1 AND state = 'pending' \
             AND next_ms <= $2 AND lease_until_ms < $2 ORDER BY next_ms, seq LIMIT {n}{skip_locked}"
        ))
        .bind(endpoint_id.to_owned())
        .bind(ms(now_ms))
        .fetch_all(&mut *tx)
        .await?;
        let mut leased = Vec::new();
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            sqlx::query("UPDATE outbox SET lease_until_ms = $1 WHERE seq = $2")
                .bind(ms(lease_until_ms))
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            let fact = sqlx::query(&format!("SELECT {COLUMNS} FROM facts WHERE seq = $1"))
                .bind(row.try_get::<i64, _>("fact_seq")?)
                .fetch_one(&mut *tx)
                .await?;
            leased.push(Leased {
                seq,
                msg_id: row.try_get("msg_id")?,
                endpoint_id: endpoint_id.to_owned(),
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                fact: read_fact(&fact)?,
            });
        }
        tx.commit().await?;
        Ok(leased)
    }

    /// Records an attempt on a leased message and what it came to; on success the
    /// endpoint's failure streak ends, on failure it starts (if it had not).
    pub async fn finish(
        &self,
        leased: &Leased,
        outcome: &Outcome,
        at_ms: u64,
        latency_ms: u64,
    ) -> Result<(), FunnelError> {
        let mut tx = self.write.begin().await?;
        let (status, error) = match outcome {
            Outcome::Delivered { status } => (Some(*status), None),
            Outcome::Retry { status, error, .. } | Outcome::Dead { status, error } => {
                (*status, Some(error.clone()))
            }
        };
        sqlx::query("INSERT INTO attempts (outbox_seq, at_ms, status, error, latency_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(leased.seq)
            .bind(ms(at_ms))
            .bind(status.map(i64::from))
            .bind(error.clone())
            .bind(ms(latency_ms))
            .execute(&mut *tx)
            .await?;
        let (state, next_ms, done) = match outcome {
            Outcome::Delivered { .. } => ("delivered", at_ms, Some(at_ms)),
            Outcome::Retry { next_ms, .. } => ("pending", *next_ms, None),
            Outcome::Dead { .. } => ("dead", at_ms, Some(at_ms)),
        };
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = attempts + 1, next_ms = $2, lease_until_ms = 0, \
             last_status = $3, last_error = $4, done_ms = $5 WHERE seq = $6",
        )
        .bind(state)
        .bind(ms(next_ms))
        .bind(status.map(i64::from))
        .bind(error)
        .bind(done.map(ms))
        .bind(leased.seq)
        .execute(&mut *tx)
        .await?;
        let streak = match outcome {
            Outcome::Delivered { .. } => {
                sqlx::query("UPDATE endpoints SET failing_since_ms = NULL WHERE id = $1")
            }
            _ => sqlx::query(
                "UPDATE endpoints SET failing_since_ms = $2 WHERE id = $1 AND failing_since_ms IS NULL",
            )
            .bind(leased.endpoint_id.clone())
            .bind(ms(at_ms)),
        };
        let streak = match outcome {
            Outcome::Delivered { .. } => streak.bind(leased.endpoint_id.clone()),
            _ => streak,
        };
        streak.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables an endpoint (410 Gone, or failing too long) and records `endpoint.disabled`
    /// in the same transaction; `false` if it was disabled already.
    pub async fn disable_endpoint(
        &self,
        id: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, FunnelError> {
        let mut tx = self.write.begin().await?;
        let row =
            sqlx::query("SELECT maker, url FROM endpoints WHERE id = $1 AND disabled_ms IS NULL")
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else { return Ok(false) };
        sqlx::query("UPDATE endpoints SET disabled_ms = $1, disabled_reason = $2 WHERE id = $3")
            .bind(ms(now_ms))
            .bind(reason.to_owned())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        let maker: String = row.try_get("maker")?;
        let url: String = row.try_get("url")?;
        let fact = Fact {
            id: format!("endpoint.disabled:{id}:{now_ms}"),
            kind: dropwire_core::FactKind::EndpointDisabled,
            maker,
            drop_id: None,
            viewer_id: None,
            at_ms: now_ms,
            detail: json!({"endpoint_id": id, "url": url, "reason": reason}),
        };
        crate::facts::insert(&mut tx, &[fact]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Messages to an endpoint, newest first, with their attempts (`state`: only those).
    pub async fn deliveries(
        &self,
        endpoint_id: &str,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, FunnelError> {
        let filter = if state.is_some() {
            " AND state = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT seq, msg_id, event, state, attempts, next_ms, created_ms, done_ms FROM outbox \
             WHERE endpoint_id = $1{filter} ORDER BY seq DESC LIMIT {}",
            limit.clamp(1, 1000)
        );
        type Row = (i64, String, String, String, i64, i64, i64, Option<i64>);
        let mut query = sqlx::query_as::<_, Row>(&sql).bind(endpoint_id.to_owned());
        if let Some(s) = state {
            query = query.bind(s.to_owned());
        }
        let rows = query.fetch_all(&self.read).await?;
        let mut out = Vec::new();
        for (seq, msg_id, event, state, attempts, next_ms, created_ms, done_ms) in rows {
            let tries = sqlx::query_as::<_, (i64, Option<i64>, Option<String>, i64)>(
                "SELECT at_ms, status, error, latency_ms FROM attempts WHERE outbox_seq = $1 ORDER BY at_ms",
            )
            .bind(seq)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(|(at, status, error, latency)| Attempt {
                at_ms: unms(at),
                status: status.and_then(|s| u16::try_from(s).ok()),
                error,
                latency_ms: unms(latency),
            })
            .collect();
            out.push(Delivery {
                msg_id,
                event,
                state,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                next_ms: unms(next_ms),
                created_ms: unms(created_ms),
                done_ms: done_ms.map(unms),
                tries,
            });
        }
        Ok(out)
    }

    /// Sends again every message to `endpoint_id` created at or after `since_ms` (same
    /// `webhook-id`s: receivers that have them drop the copies); returns how many.
    pub async fn replay(
        &self,
        endpoint_id: &str,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<u64, FunnelError> {
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = $1, lease_until_ms = 0, done_ms = NULL \
             WHERE endpoint_id = $2 AND created_ms >= $3",
        )
        .bind(ms(now_ms))
        .bind(endpoint_id.to_owned())
        .bind(ms(since_ms))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Sends one message again now (a dead letter, or one waiting for its next try).
    pub async fn retry(
        &self,
        endpoint_id: &str,
        msg_id: &str,
        now_ms: u64,
    ) -> Result<bool, FunnelError> {
        let n = sqlx::query(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = $1, lease_until_ms = 0, done_ms = NULL \
             WHERE endpoint_id = $2 AND msg_id = $3",
        )
        .bind(ms(now_ms))
        .bind(endpoint_id.to_owned())
        .bind(msg_id.to_owned())
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Forgets delivered and dead messages (and their attempts) finished before
    /// `before_ms`, so the outbox does not grow with every drop ever run; returns how many.
    pub async fn prune_outbox(&self, before_ms: u64) -> Result<u64, FunnelError> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM attempts WHERE outbox_seq IN (SELECT seq FROM outbox WHERE state <> 'pending' AND done_ms < $1)",
        )
        .bind(ms(before_ms))
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query("DELETE FROM outbox WHERE state <> 'pending' AND done_ms < $1")
            .bind(ms(before_ms))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Messages waiting (pending), and those in the dead letter list, over every endpoint.
    pub async fn outbox_counts(&self) -> Result<(u64, u64), FunnelError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0) AS dead FROM outbox",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((unms(row.try_get("pending")?), unms(row.try_get("dead")?)))
    }
}
