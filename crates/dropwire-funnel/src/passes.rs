//! Collectible passes: a maker's pass rules (`pass_rules`: what earns a pass, what it
//! grants) and the passes viewers earned (`passes`), persisting across drops.
//!
//! A pass is earned in the transaction that records the fact completing its rule
//! ([`earn`], called by `consequences`): only the rules of the fact's maker are read, only
//! for the fact's viewer, and a pass is earned once per rule and viewer (a second try is a
//! no-op). The maker may revoke a pass; it stays, with `revoked_ms`. The key that signs the
//! passes' portable tokens is kept here too ([`Ledger::signing_secret`]), so every node
//! sharing the ledger signs with the same one.

use std::collections::HashMap;

use dropwire_core::{Fact, FactKind};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::{ms, unms};
use crate::{FunnelError, Ledger};

/// The largest count a rule may ask for.
pub const MAX_COUNT: u32 = 1_000_000;
/// The largest per-viewer limit a pass may grant.
pub const MAX_PER_VIEWER_LIMIT: u32 = 1000;

/// What earns a pass: attending N drops, N claims, or N quest points (all of the maker's
/// drops, since the viewer's first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EarnedBy {
    /// Drops attended (`viewer.attended` facts).
    Attendance(u32),
    /// Claims granted (`claim.granted` facts).
    Claims(u32),
    /// Quest points awarded (the `points` of `quest.awarded` facts, summed).
    QuestPoints(u32),
}

impl EarnedBy {
    fn kind(self) -> FactKind {
        match self {
            EarnedBy::Attendance(_) => FactKind::ViewerAttended,
            EarnedBy::Claims(_) => FactKind::ClaimGranted,
            EarnedBy::QuestPoints(_) => FactKind::QuestAwarded,
        }
    }

    fn count(self) -> u32 {
        match self {
            EarnedBy::Attendance(n) | EarnedBy::Claims(n) | EarnedBy::QuestPoints(n) => n,
        }
    }
}

/// What a pass grants its holder in the maker's drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Membership of the early-access segment of the maker's drops.
    #[serde(default)]
    pub early_access: bool,
    /// A higher per-viewer limit (items per viewer and SKU), 1–1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "utoipa", schema(minimum = 1, maximum = 1000))]
    pub per_viewer_limit: Option<u32>,
}

/// A new pass rule (`POST /api/v1/passes/rules`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PassRuleSpec {
    /// The rule's id (made when absent).
    #[serde(default)]
    #[cfg_attr(feature = "utoipa", schema(pattern = "^[a-z0-9-]{1,64}$"))]
    pub id: Option<String>,
    #[cfg_attr(feature = "utoipa", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// Exactly one of `attendance`, `claims`, `quest_points`: the count (1–1,000,000).
    pub earned_by: EarnedBy,
    #[serde(default)]
    pub grants: Grants,
}

impl PassRuleSpec {
    /// The first thing wrong with the rule: `(field, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, message: String| Err((field.to_owned(), message));
        if let Some(id) = &self.id {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return bad("id", "1–64 of a-z, 0-9 and -".into());
            }
        }
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return bad("name", "1–200 characters".into());
        }
        let field = match self.earned_by {
            EarnedBy::Attendance(_) => "earned_by.attendance",
            EarnedBy::Claims(_) => "earned_by.claims",
            EarnedBy::QuestPoints(_) => "earned_by.quest_points",
        };
        if !(1..=MAX_COUNT).contains(&self.earned_by.count()) {
            return bad(field, format!("a count from 1 to {MAX_COUNT}"));
        }
        if let Some(n) = self.grants.per_viewer_limit
            && !(1..=MAX_PER_VIEWER_LIMIT).contains(&n)
        {
            return bad(
                "grants.per_viewer_limit",
                format!("from 1 to {MAX_PER_VIEWER_LIMIT}"),
            );
        }
        Ok(())
    }
}

/// A pass rule as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct PassRule {
    pub id: String,
    /// The maker whose rule it is.
    pub maker: String,
    pub name: String,
    pub earned_by: EarnedBy,
    pub grants: Grants,
    pub created_ms: u64,
}

/// A pass a viewer earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Pass {
    /// `pass_` and a ULID.
    pub id: String,
    pub maker: String,
    /// The rule that earned it.
    pub rule: String,
    pub viewer_id: String,
    pub earned_ms: u64,
    /// When the maker revoked it (absent while it is valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

const RULE_COLUMNS: &str = "maker, id, name, earned_by, grants, created_ms";
const PASS_COLUMNS: &str = "id, maker, rule, viewer_id, earned_ms, revoked_ms";

fn read_rule(row: &AnyRow) -> Result<PassRule, FunnelError> {
    let id: String = row.try_get("id")?;
    let json = |col: &str| -> Result<String, FunnelError> { Ok(row.try_get(col)?) };
    let corrupt = |e| FunnelError::corrupt(format!("pass rule {id}"), e);
    Ok(PassRule {
        maker: row.try_get("maker")?,
        name: row.try_get("name")?,
        earned_by: serde_json::from_str(&json("earned_by")?).map_err(corrupt)?,
        grants: serde_json::from_str(&json("grants")?).map_err(corrupt)?,
        created_ms: unms(row.try_get("created_ms")?),
        id: id.clone(),
    })
}

fn read_pass(row: &AnyRow) -> Result<Pass, FunnelError> {
    Ok(Pass {
        id: row.try_get("id")?,
        maker: row.try_get("maker")?,
        rule: row.try_get("rule")?,
        viewer_id: row.try_get("viewer_id")?,
        earned_ms: unms(row.try_get("earned_ms")?),
        revoked_ms: row.try_get::<Option<i64>, _>("revoked_ms")?.map(unms),
    })
}

fn to_json<T: Serialize>(v: &T) -> Result<String, FunnelError> {
    serde_json::to_string(v).map_err(|e| FunnelError::corrupt("pass rule", e))
}

/// Earns the passes that `new` facts complete, in their transaction.
pub(crate) async fn earn(
    tx: &mut Transaction<'static, Any>,
    new: &[&Fact],
) -> Result<(), FunnelError> {
    const KINDS: [FactKind; 3] = [
        FactKind::ViewerAttended,
        FactKind::ClaimGranted,
        FactKind::QuestAwarded,
    ];
    let mut rules: HashMap<String, Vec<PassRule>> = HashMap::new();
    let mut done: Vec<(&str, &str, FactKind)> = Vec::new();
    for fact in new {
        let Some(viewer) = fact.viewer_id.as_deref() else {
            continue;
        };
        if !KINDS.contains(&fact.kind) || done.contains(&(&fact.maker, viewer, fact.kind)) {
            continue;
        }
        done.push((&fact.maker, viewer, fact.kind));
        if !rules.contains_key(&fact.maker) {
            let rows = sqlx::query(&format!(
                "SELECT {RULE_COLUMNS} FROM pass_rules WHERE maker = $1"
            ))
            .bind(fact.maker.clone())
            .fetch_all(&mut **tx)
            .await?;
            let read: Result<Vec<_>, _> = rows.iter().map(read_rule).collect();
            rules.insert(fact.maker.clone(), read?);
        }
        let wanted: Vec<&PassRule> = rules[&fact.maker]
            .iter()
            .filter(|r| r.earned_by.kind() == fact.kind)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let held: Vec<String> =
            sqlx::query("SELECT rule FROM passes WHERE maker = $1 AND viewer_id = $2")
                .bind(fact.maker.clone())
                .bind(viewer.to_owned())
                .fetch_all(&mut **tx)
                .await?
                .iter()
                .map(|r| r.try_get("rule"))
                .collect::<Result<_, _>>()?;
        let wanted: Vec<&PassRule> = wanted
            .into_iter()
            .filter(|r| !held.contains(&r.id))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let total = tally(tx, &fact.maker, viewer, fact.kind).await?;
        for rule in wanted {
            if total >= u64::from(rule.earned_by.count()) {
                sqlx::query(&format!(
                    "INSERT INTO passes ({PASS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL) \
                     ON CONFLICT (maker, rule, viewer_id) DO NOTHING"
                ))
                .bind(format!("pass_{}", ulid::Ulid::new()))
                .bind(fact.maker.clone())
                .bind(rule.id.clone())
                .bind(viewer.to_owned())
                .bind(ms(fact.at_ms))
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// A viewer's count of `kind` with `maker`: facts, or quest points summed.
async fn tally(
    tx: &mut Transaction<'static, Any>,
    maker: &str,
    viewer: &str,
    kind: FactKind,
) -> Result<u64, FunnelError> {
    let bind = |sql: &'static str| {
        sqlx::query(sql)
            .bind(maker.to_owned())
            .bind(viewer.to_owned())
            .bind(kind.as_str())
    };
    if kind != FactKind::QuestAwarded {
        let n: i64 = bind(
            "SELECT COUNT(*) AS n FROM facts WHERE maker = $1 AND viewer_id = $2 AND kind = $3",
        )
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
        return Ok(unms(n));
    }
    let rows = bind("SELECT detail FROM facts WHERE maker = $1 AND viewer_id = $2 AND kind = $3")
        .fetch_all(&mut **tx)
        .await?;
    let mut points = 0u64;
    for row in rows {
        let detail: String = row.try_get("detail")?;
        let detail: serde_json::Value =
            serde_json::from_str(&detail).map_err(|e| FunnelError::corrupt("quest.awarded", e))?;
        points = points.saturating_add(detail["points"].as_u64().unwrap_or(0));
    }
    Ok(points)
}

impl Ledger {
    /// A new pass rule of `maker` with the id `id`; `None` when the id is taken.
    pub async fn create_pass_rule(
        &self,
        maker: &str,
        id: &str,
        spec: &PassRuleSpec,
        now_ms: u64,
    ) -> Result<Option<PassRule>, FunnelError> {
        let done = sqlx::query(&format!(
            "INSERT INTO pass_rules ({RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (maker, id) DO NOTHING"
        ))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .bind(spec.name.trim().to_owned())
        .bind(to_json(&spec.earned_by)?)
        .bind(to_json(&spec.grants)?)
        .bind(ms(now_ms))
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.pass_rule(maker, id).await
    }

    /// `maker`'s pass rules, oldest first.
    pub async fn pass_rules(&self, maker: &str) -> Result<Vec<PassRule>, FunnelError> {
        let rows = sqlx::query(&format!(
            "SELECT {RULE_COLUMNS} FROM pass_rules WHERE maker = $1 ORDER BY created_ms, id"
        ))
        .bind(maker.to_owned())
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(read_rule).collect()
    }

    /// One pass rule of `maker` (another maker's is `None`).
    pub async fn pass_rule(&self, maker: &str, id: &str) -> Result<Option<PassRule>, FunnelError> {
        let row = sqlx::query(&format!(
            "SELECT {RULE_COLUMNS} FROM pass_rules WHERE maker = $1 AND id = $2"
        ))
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.write)
        .await?;
        row.as_ref().map(read_rule).transpose()
    }

    /// Deletes a pass rule of `maker` (the passes it earned stay); whether it was there.
    pub async fn delete_pass_rule(&self, maker: &str, id: &str) -> Result<bool, FunnelError> {
        let done = sqlx::query("DELETE FROM pass_rules WHERE maker = $1 AND id = $2")
            .bind(maker.to_owned())
            .bind(id.to_owned())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A viewer's passes, oldest first: of `maker` only, or of every maker.
    pub async fn passes_of(
        &self,
        maker: Option<&str>,
        viewer_id: &str,
    ) -> Result<Vec<Pass>, FunnelError> {
        let mut sql = format!("SELECT {PASS_COLUMNS} FROM passes WHERE viewer_id = $1");
        if maker.is_some() {
            sql.push_str(" AND maker = $2");
        }
        sql.push_str(" ORDER BY earned_ms, id LIMIT 1000");
        let mut query = sqlx::query(&sql).bind(viewer_id.to_owned());
        if let Some(m) = maker {
            query = query.bind(m.to_owned());
        }
        let rows = query.fetch_all(&self.write).await?;
        rows.iter().map(read_pass).collect()
    }

    /// One pass, whoever's it is.
    pub async fn pass(&self, id: &str) -> Result<Option<Pass>, FunnelError> {
        let row = sqlx::query(&format!("SELECT {PASS_COLUMNS} FROM passes WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(&self.write)
            .await?;
        row.as_ref().map(read_pass).transpose()
    }

    /// Revokes a pass of `maker` (a second revocation keeps the first time); `None` when
    /// `maker` has no such pass.
    pub async fn revoke_pass(
        &self,
        maker: &str,
        id: &str,
        now_ms: u64,
    ) -> Result<Option<Pass>, FunnelError> {
        sqlx::query(
            "UPDATE passes SET revoked_ms = $3 WHERE maker = $1 AND id = $2 AND revoked_ms IS NULL",
        )
        .bind(maker.to_owned())
        .bind(id.to_owned())
        .bind(ms(now_ms))
        .execute(&self.write)
        .await?;
        Ok(self.pass(id).await?.filter(|p| p.maker == maker))
    }

    /// What the viewer's valid passes of `maker` grant together: early access if any
    /// grants it, and the highest `per_viewer_limit` any grants. Revoked passes and passes
    /// whose rule was deleted grant nothing.
    pub async fn held_grants(&self, maker: &str, viewer_id: &str) -> Result<Grants, FunnelError> {
        let rows = sqlx::query(
            "SELECT r.grants FROM passes p JOIN pass_rules r ON r.maker = p.maker AND r.id = p.rule \
             WHERE p.viewer_id = $1 AND p.maker = $2 AND p.revoked_ms IS NULL",
        )
        .bind(viewer_id.to_owned())
        .bind(maker.to_owned())
        .fetch_all(&self.read)
        .await?;
        let mut held = Grants::default();
        for row in rows {
            let text: String = row.try_get("grants")?;
            let grants: Grants = serde_json::from_str(&text)
                .map_err(|e| FunnelError::corrupt(format!("pass grants of {maker}"), e))?;
            held.early_access |= grants.early_access;
            held.per_viewer_limit = held.per_viewer_limit.max(grants.per_viewer_limit);
        }
        Ok(held)
    }

    /// The signing secret kept for `purpose`: `(kid, secret)`. The first call stores
    /// `candidate`; every later one (on any node sharing the ledger) returns what was stored.
    pub async fn signing_secret(
        &self,
        purpose: &str,
        candidate: (&str, &str),
        now_ms: u64,
    ) -> Result<(String, String), FunnelError> {
        sqlx::query(
            "INSERT INTO signing_keys (purpose, kid, secret, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (purpose) DO NOTHING",
        )
        .bind(purpose.to_owned())
        .bind(candidate.0.to_owned())
        .bind(candidate.1.to_owned())
        .bind(ms(now_ms))
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT kid, secret FROM signing_keys WHERE purpose = $1")
            .bind(purpose.to_owned())
            .fetch_one(&self.write)
            .await?;
        Ok((row.try_get("kid")?, row.try_get("secret")?))
    }
}
