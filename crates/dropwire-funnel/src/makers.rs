//! Makers (the hub's tenants) and their admin tokens. A token is stored only as a hash
//! (the caller's: the server keeps the SHA-256 of the token's text, in hex), so reading the
//! ledger does not reveal one; a revoked token keeps its row. The maker `default`
//! (`dropwire_core::funnel::DEFAULT_MAKER`) is implicit: it owns everything made before
//! makers were tenants, has no row and no tokens (the operator's admin tokens act as it).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

/// A maker as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Maker {
    pub id: String,
    pub name: String,
    pub created_ms: u64,
}

/// One of a maker's tokens (never its text, nor its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct MakerToken {
    pub id: String,
    pub maker: String,
    pub label: String,
    pub created_ms: u64,
    /// When it was revoked (absent: it is valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(nullable = false))]
    pub revoked_ms: Option<u64>,
}

/// A token to store: its id, label and the hash of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: String,
    pub label: String,
    pub hash: String,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub maker: String,
    pub token_id: String,
}

const TOKEN_COLUMNS: &str = "id, maker, label, created_ms, revoked_ms";

fn read_maker(row: &AnyRow) -> Result<Maker, FunnelError> {
    Ok(Maker {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_ms: unms(row.try_get("created_ms")?),
    })
}

fn read_token(row: &AnyRow) -> Result<MakerToken, FunnelError> {
    Ok(MakerToken {
        id: row.try_get("id")?,
        maker: row.try_get("maker")?,
        label: row.try_get("label")?,
        created_ms: unms(row.try_get("created_ms")?),
        revoked_ms: row.try_get::<Option<i64>, _>("revoked_ms")?.map(unms),
    })
}

impl Ledger {
    /// A new maker `id` with its first token, in one transaction; `None` when the id is
    /// taken (nothing is written then).
    pub async fn create_maker(
        &self,
        id: &str,
        name: &str,
        token: &NewToken,
        now_ms: u64,
    ) -> Result<Option<Maker>, FunnelError> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "INSERT INTO makers (id, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_owned())
        .bind(name.to_owned())
        .bind(ms(now_ms))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        insert_token(&mut tx, id, token, now_ms).await?;
        tx.commit().await?;
        Ok(Some(Maker {
            id: id.to_owned(),
            name: name.to_owned(),
            created_ms: now_ms,
        }))
    }

    /// Every maker (the implicit `default` is not among them), oldest first.
    pub async fn makers(&self) -> Result<Vec<Maker>, FunnelError> {
        let rows = sqlx::query("SELECT id, name, created_ms FROM makers ORDER BY created_ms, id")
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(read_maker).collect()
    }

    /// One maker.
    pub async fn maker(&self, id: &str) -> Result<Option<Maker>, FunnelError> {
        let row = sqlx::query("SELECT id, name, created_ms FROM makers WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(read_maker).transpose()
    }

    /// Another token of `maker`; `None` when there is no such maker.
    pub async fn add_maker_token(
        &self,
        maker: &str,
        token: &NewToken,
        now_ms: u64,
    ) -> Result<Option<MakerToken>, FunnelError> {
        let mut tx = self.write.begin().await?;
        let exists = sqlx::query("SELECT id FROM makers WHERE id = $1")
            .bind(maker.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        insert_token(&mut tx, maker, token, now_ms).await?;
        tx.commit().await?;
        Ok(Some(MakerToken {
            id: token.id.clone(),
            maker: maker.to_owned(),
            label: token.label.clone(),
            created_ms: now_ms,
            revoked_ms: None,
        }))
    }

    /// `maker`'s tokens, revoked ones too, oldest first.
    pub async fn maker_tokens(&self, maker: &str) -> Result<Vec<MakerToken>, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM maker_tokens WHERE maker = $1 ORDER BY created_ms, id"
        ))
        .bind(maker.to_owned())
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(read_token).collect()
    }

    /// Revokes `maker`'s token `token_id` (again: a no-op that keeps the first moment);
    /// the token as it stands, `None` when `maker` has no such token.
    pub async fn revoke_maker_token(
        &self,
        maker: &str,
        token_id: &str,
        now_ms: u64,
    ) -> Result<Option<MakerToken>, FunnelError> {
        sqlx::query(
            "UPDATE maker_tokens SET revoked_ms = $1 WHERE maker = $2 AND id = $3 AND revoked_ms IS NULL",
        )
        .bind(ms(now_ms))
        .bind(maker.to_owned())
        .bind(token_id.to_owned())
        .execute(&self.write)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM maker_tokens WHERE maker = $1 AND id = $2"
        ))
        .bind(maker.to_owned())
        .bind(token_id.to_owned())
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(read_token).transpose()
    }

    /// The maker and token id of the valid (not revoked) token whose hash is `hash`.
    pub async fn token_owner(&self, hash: &str) -> Result<Option<TokenOwner>, FunnelError> {
        let row = sqlx::query(
            "SELECT id, maker FROM maker_tokens WHERE hash = $1 AND revoked_ms IS NULL",
        )
        .bind(hash.to_owned())
        .fetch_optional(&self.write)
        .await?;
        row.map(|row| {
            Ok(TokenOwner {
                maker: row.try_get("maker")?,
                token_id: row.try_get("id")?,
            })
        })
        .transpose()
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    maker: &str,
    token: &NewToken,
    now_ms: u64,
) -> Result<(), FunnelError> {
    sqlx::query(
        "INSERT INTO maker_tokens (id, maker, label, hash, created_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.id.clone())
    .bind(maker.to_owned())
    .bind(token.label.clone())
    .bind(token.hash.clone())
    .bind(ms(now_ms))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
