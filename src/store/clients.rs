//! Clients and their API keys.

use super::{all, batch, batch_of, execute, first, first_row, rows, statement, Arg};
use crate::args;
use crate::domain::time::{day_number, month_bounds, month_key};
use crate::domain::api_key::{ApiKey, KeyHash, KeyKind};
use crate::domain::client::{ClientChanges, NewClient};
use crate::domain::cursor::Cursor;
use crate::domain::ids::ClientId;
use crate::error::ApiResult;
use serde::{Deserialize, Serialize};
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone, Deserialize)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub active: i64,
    pub usage_limit: u64,
    pub rate_limit_per_minute: u64,
    pub rate_limit_burst: Option<u64>,
    pub max_concurrent: u64,
    pub allowed_origins: String,
    pub webhook_url: Option<String>,
    pub webhook_secret_version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Bumped by every change the client's limiter object must learn of.
    pub snapshot_version: u64,
    pub widget_rate_limit_per_minute: u64,
    pub shopper_rate_limit_per_minute: u64,
    pub shopper_daily_limit: u64,
    /// Days its result images are kept, when not `RETENTION_DAYS`.
    pub retention_days: Option<u64>,
    /// When it was deleted: the row stays, inactive and without keys, so
    /// past months' usage still names it.
    pub deleted_at: Option<u64>,
    /// JSON array of the callback event types the client chose; `None` is every type.
    #[serde(default)]
    pub webhook_events: Option<String>,
    /// Set when the client's endpoint kept failing (see `events::verdict`); cleared by an admin.
    #[serde(default)]
    pub callbacks_paused_at: Option<u64>,
    /// The first failed callback attempt since the last success.
    #[serde(default)]
    pub callbacks_failing_since: Option<u64>,
    /// When the client's limiter object came to exist (its first API
    /// request); `None`: not yet, so nothing is pushed to it.
    #[serde(default)]
    pub limiter_created_at: Option<u64>,
}

impl ClientRow {
    pub fn is_active(&self) -> bool {
        super::is_true(self.active)
    }

    pub fn origins(&self) -> Vec<String> {
        serde_json::from_str(&self.allowed_origins).unwrap_or_default()
    }

    /// The chosen callback event types' names, or `None` for every type.
    pub fn callback_types(&self) -> Option<Vec<String>> {
        self.webhook_events.as_deref().map(|raw| serde_json::from_str(raw).unwrap_or_default())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KeyRow {
    pub id: String,
    pub client_id: String,
    /// `secret` or `publishable`.
    pub kind: String,
    pub prefix: String,
    /// The whole key, for publishable keys only (public by design).
    pub publishable_key: Option<String>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
}

const CLIENT_COLUMNS: &str = "id, name, email, active, usage_limit, rate_limit_per_minute, rate_limit_burst, max_concurrent, allowed_origins, webhook_url, webhook_secret_version, created_at, updated_at, snapshot_version, widget_rate_limit_per_minute, shopper_rate_limit_per_minute, shopper_daily_limit, retention_days, deleted_at, webhook_events, callbacks_paused_at, callbacks_failing_since, limiter_created_at";
const KEY_COLUMNS: &str = "id, client_id, kind, prefix, publishable_key, created_at, expires_at, revoked_at";

fn insert_key(db: &D1Database, key_id: &str, key: &ApiKey, now: u64) -> ApiResult<D1PreparedStatement> {
    let whole = (key.kind() == KeyKind::Publishable).then(|| key.reveal().to_string());
    statement(
        db,
        "INSERT INTO api_keys (id, client_id, key_hash, prefix, created_at, kind, publishable_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![key_id, key.client_id().as_str(), key.hash().0, key.display_prefix(), now, key.kind().as_str(), whole],
    )
}

/// Creates the client and its first key in one transaction.
pub async fn create(db: &D1Database, id: &ClientId, new: &NewClient, key: &ApiKey, key_id: &str, now: u64) -> ApiResult<()> {
    let origins = serde_json::to_string(&new.allowed_origins)?;
    let client = statement(
        db,
        "INSERT INTO clients (id, name, email, active, usage_limit, rate_limit_per_minute, rate_limit_burst, max_concurrent, allowed_origins, created_at, updated_at,
                              widget_rate_limit_per_minute, shopper_rate_limit_per_minute, shopper_daily_limit)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12)",
        args![
            id.as_str(), &new.name, new.email.clone(), new.usage_limit, new.rate_limit_per_minute, new.rate_limit_burst, new.max_concurrent, origins, now,
            new.widget.widget_rate_limit_per_minute, new.widget.shopper_rate_limit_per_minute, new.widget.shopper_daily_limit
        ],
    )?;
    batch(db, vec![client, insert_key(db, key_id, key, now)?]).await?;
    Ok(())
}

/// A client that has not been deleted.
pub async fn get(db: &D1Database, id: &ClientId) -> ApiResult<Option<ClientRow>> {
    first(db, &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1 AND deleted_at IS NULL"), args![id.as_str()]).await
}

/// Newest first, cursor-paginated.
pub async fn list(db: &D1Database, limit: u32, after: Option<&Cursor>) -> ApiResult<Vec<ClientRow>> {
    let (at, id) = after.map_or((u64::MAX >> 11, String::new()), |c| (c.created_at, c.id.clone()));
    all(
        db,
        &format!(
            "SELECT {CLIENT_COLUMNS} FROM clients
             WHERE deleted_at IS NULL AND (?3 = '' OR created_at < ?1 OR (created_at = ?1 AND id < ?3))
             ORDER BY created_at DESC, id DESC LIMIT ?2"
        ),
        args![at, limit, id],
    )
    .await
}

/// Applies the changes and returns the updated row, or `None` if there is no such client.
pub async fn update(db: &D1Database, id: &ClientId, changes: &ClientChanges, now: u64) -> ApiResult<Option<ClientRow>> {
    let mut sets = vec!["updated_at = ?1".to_string(), "snapshot_version = snapshot_version + 1".to_string()];
    let mut values: Vec<Arg> = args![now];
    let mut set = |column: &str, value: Arg| {
        values.push(value);
        sets.push(format!("{column} = ?{}", values.len()));
    };
    if let Some(name) = &changes.name {
        set("name", name.into());
    }
    if let Some(email) = &changes.email {
        set("email", email.clone().into());
    }
    if let Some(active) = changes.active {
        set("active", active.into());
    }
    if let Some(limit) = changes.usage_limit {
        set("usage_limit", limit.into());
    }
    if let Some(limit) = changes.rate_limit_per_minute {
        set("rate_limit_per_minute", limit.into());
    }
    if let Some(burst) = changes.rate_limit_burst {
        set("rate_limit_burst", burst.into());
    }
    if let Some(n) = changes.max_concurrent {
        set("max_concurrent", n.into());
    }
    if let Some(url) = &changes.webhook_url {
        set("webhook_url", url.clone().into());
    }
    if let Some(types) = &changes.webhook_events {
        let names = types.as_ref().map(|t| t.iter().map(|t| t.as_str()).collect::<Vec<_>>());
        set("webhook_events", names.map(|n| serde_json::to_string(&n)).transpose()?.into());
    }
    if let Some(origins) = &changes.allowed_origins {
        set("allowed_origins", serde_json::to_string(origins)?.into());
    }
    if let Some(n) = changes.widget_rate_limit_per_minute {
        set("widget_rate_limit_per_minute", n.into());
    }
    if let Some(n) = changes.shopper_rate_limit_per_minute {
        set("shopper_rate_limit_per_minute", n.into());
    }
    if let Some(n) = changes.shopper_daily_limit {
        set("shopper_daily_limit", n.into());
    }
    if let Some(days) = changes.retention_days {
        set("retention_days", days.into());
    }
    values.push(id.as_str().into());
    let sql = format!(
        "UPDATE clients SET {} WHERE id = ?{} AND deleted_at IS NULL RETURNING {CLIENT_COLUMNS}",
        sets.join(", "),
        values.len()
    );
    first(db, &sql, values).await
}

pub async fn keys(db: &D1Database, id: &ClientId) -> ApiResult<Vec<KeyRow>> {
    all(
        db,
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE client_id = ?1 ORDER BY created_at DESC"),
        args![id.as_str()],
    )
    .await
}

/// Keys of several clients at once (the admin list), in one query.
pub async fn keys_of(db: &D1Database, ids: &[String]) -> ApiResult<Vec<KeyRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    all(
        db,
        &format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE client_id IN (SELECT value FROM json_each(?1)) ORDER BY created_at DESC"
        ),
        args![serde_json::to_string(ids)?],
    )
    .await
}

/// Adds `key` and retires the client's other usable keys of the same kind:
/// at once when `grace_ms` is zero, otherwise at `now + grace_ms`.
pub async fn rotate_key(db: &D1Database, key: &ApiKey, key_id: &str, now: u64, grace_ms: u64) -> ApiResult<()> {
    let (client, kind) = (key.client_id().as_str(), key.kind().as_str());
    let retire = if grace_ms == 0 {
        statement(
            db,
            "UPDATE api_keys SET revoked_at = ?2 WHERE client_id = ?1 AND kind = ?3 AND revoked_at IS NULL",
            args![client, now, kind],
        )?
    } else {
        statement(
            db,
            "UPDATE api_keys SET expires_at = MIN(COALESCE(expires_at, ?2), ?2)
             WHERE client_id = ?1 AND kind = ?4 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?3)",
            args![client, now + grace_ms, now, kind],
        )?
    };
    batch(db, vec![retire, insert_key(db, key_id, key, now)?, bump_version(db, client)?]).await?;
    Ok(())
}

fn bump_version(db: &D1Database, client: &str) -> ApiResult<D1PreparedStatement> {
    statement(db, "UPDATE clients SET snapshot_version = snapshot_version + 1 WHERE id = ?1", args![client])
}

/// Revokes one key of one client. Returns false if the client has no such key.
pub async fn revoke_key(db: &D1Database, client: &ClientId, key_id: &str, now: u64) -> ApiResult<bool> {
    let [revoked, _] = batch_of(
        db,
        [
            statement(
                db,
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE client_id = ?1 AND id = ?2",
                args![client.as_str(), key_id, now],
            )?,
            bump_version(db, client.as_str())?,
        ],
    )
    .await?;
    Ok(revoked.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// The client a key belongs to, if the key is usable now. A statement, so
/// read endpoints can batch it with their query into one round trip.
pub fn key_owner_statement(db: &D1Database, hash: &KeyHash, client: &ClientId, now: u64) -> ApiResult<D1PreparedStatement> {
    let columns = CLIENT_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
    statement(
        db,
        &format!(
            "SELECT {columns} FROM api_keys k JOIN clients c ON c.id = k.client_id
             WHERE k.key_hash = ?1 AND k.client_id = ?2 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?3)"
        ),
        args![hash.0.clone(), client.as_str(), now],
    )
}

/// A usable key, as the limiter needs it.
#[derive(Deserialize)]
pub struct LiveKey {
    pub key_hash: String,
    pub expires_at: Option<u64>,
    pub kind: String,
}

/// What the limiter needs to know of a client: its row (if it exists), its
/// usable keys, and the successful generations of the current month (to
/// rebuild the limiter's count if its own storage was lost).
pub struct ClientLimits {
    pub row: Option<ClientRow>,
    pub keys: Vec<LiveKey>,
    pub used_this_month: u64,
}

#[derive(Deserialize)]
struct MonthUsage {
    used: Option<u64>,
}

/// Reads `ClientLimits` in one round trip.
pub async fn limits_of(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<ClientLimits> {
    let [row, keys, used] = limits_statements(db, client, now)?;
    let [row, keys, used] = batch_of(db, [row, keys, used]).await?;
    limits_from(row, keys, used)
}

/// The same, for the client's limiter object loading itself: it first notes
/// that the object exists, in the same batch (D1 runs a batch in order, as
/// one transaction), so an admin change either lands before this read or
/// sees the note and is pushed to the object.
pub async fn limits_for_object(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<ClientLimits> {
    let created = statement(
        db,
        "UPDATE clients SET limiter_created_at = ?2 WHERE id = ?1 AND limiter_created_at IS NULL",
        args![client.as_str(), now],
    )?;
    let [row, keys, used] = limits_statements(db, client, now)?;
    let [_, row, keys, used] = batch_of(db, [created, row, keys, used]).await?;
    limits_from(row, keys, used)
}

fn limits_statements(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<[D1PreparedStatement; 3]> {
    let id = client.as_str();
    let (from_day, to_day) = month_bounds(&month_key(now)).map_or((0, 0), |(a, b)| (day_number(a), day_number(b)));
    Ok([
        statement(db, &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?1"), args![id])?,
        statement(
            db,
            "SELECT key_hash, expires_at, kind FROM api_keys WHERE client_id = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
            args![id, now],
        )?,
        statement(
            db,
            "SELECT SUM(success_count) AS used FROM usage_daily WHERE client_id = ?1 AND day >= ?2 AND day < ?3",
            args![id, from_day, to_day],
        )?,
    ])
}

fn limits_from(row: worker::D1Result, keys: worker::D1Result, used: worker::D1Result) -> ApiResult<ClientLimits> {
    Ok(ClientLimits {
        row: first_row(&row)?,
        keys: rows(&keys)?,
        used_this_month: first_row::<MonthUsage>(&used)?.and_then(|u| u.used).unwrap_or(0),
    })
}

#[derive(Deserialize)]
struct CallbackRow {
    webhook_url: Option<String>,
    webhook_secret_version: u64,
}

/// Where to send a client's job callbacks, and its secret's version.
pub async fn callback_target(db: &D1Database, client_id: &str) -> ApiResult<Option<(String, u64)>> {
    let row: Option<CallbackRow> =
        first(db, "SELECT webhook_url, webhook_secret_version FROM clients WHERE id = ?1", args![client_id]).await?;
    Ok(row.and_then(|r| r.webhook_url.map(|url| (url, r.webhook_secret_version))))
}

/// Starts a new callback secret (the old one stops verifying) and returns its version.
pub async fn bump_webhook_secret(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<Option<u64>> {
    #[derive(Deserialize)]
    struct Version {
        webhook_secret_version: u64,
    }
    let row: Option<Version> = first(
        db,
        "UPDATE clients SET webhook_secret_version = webhook_secret_version + 1, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL RETURNING webhook_secret_version",
        args![client.as_str(), now],
    )
    .await?;
    Ok(row.map(|r| r.webhook_secret_version))
}

/// Deletes a client's access at once: the row stays as a tombstone
/// (inactive, no callback URL, `deleted_at` set) so invoices of past months
/// still name it; its keys are deleted. False when there is no such client.
/// Deleting again is allowed (it resumes the erasure of its data).
pub async fn tombstone(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<Option<u64>> {
    #[derive(Deserialize)]
    struct Deleted {
        deleted_at: u64,
    }
    let [row, _keys] = batch_of(
        db,
        [
            statement(
                db,
                "UPDATE clients SET active = 0, webhook_url = NULL, deleted_at = COALESCE(deleted_at, ?2), purged_at = NULL, updated_at = ?2
                 WHERE id = ?1 RETURNING deleted_at",
                args![client.as_str(), now],
            )?,
            statement(db, "DELETE FROM api_keys WHERE client_id = ?1", args![client.as_str()])?,
        ],
    )
    .await?;
    Ok(first_row::<Deleted>(&row)?.map(|d| d.deleted_at))
}

/// Clients whose data is still being erased: deleted and not yet found
/// empty, or found empty less than `recheck_ms` ago (a job that was still
/// running at FAL may record its generation after the first sweep).
pub async fn being_erased(db: &D1Database, now: u64, recheck_ms: u64, limit: u32) -> ApiResult<Vec<ClientId>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let rows: Vec<Id> = all(
        db,
        "SELECT id FROM clients WHERE deleted_at IS NOT NULL AND (purged_at IS NULL OR purged_at > ?1) ORDER BY deleted_at LIMIT ?2",
        args![now.saturating_sub(recheck_ms), limit],
    )
    .await?;
    Ok(rows.iter().filter_map(|r| ClientId::parse(&r.id)).collect())
}

/// A sweep found nothing left of the client (kept from the first time).
pub async fn mark_erased(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<()> {
    execute(db, "UPDATE clients SET purged_at = COALESCE(purged_at, ?2) WHERE id = ?1", args![client.as_str(), now]).await?;
    Ok(())
}

/// A client that keeps its images for its own number of days.
#[derive(Debug, Deserialize)]
pub struct RetentionOverride {
    pub id: String,
    pub retention_days: u64,
}

pub async fn retention_overrides(db: &D1Database) -> ApiResult<Vec<RetentionOverride>> {
    all(
        db,
        "SELECT id, retention_days FROM clients WHERE retention_days IS NOT NULL AND deleted_at IS NULL",
        args![],
    )
    .await
}
