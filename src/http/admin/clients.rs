//! Clients and their keys: list, create, show, update, delete, rotate, revoke.

use crate::auth::AdminSession;
use crate::domain::api_key::{ApiKey, KeyKind};
use crate::domain::callback::{derive_secret, format_secret};
use crate::domain::client::{ClientChanges, NewClient};
use crate::domain::cursor::Cursor;
use crate::domain::ids::{new_id, ClientId};
use crate::domain::input::parse_json;
use crate::domain::time::to_rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::paging::{page_params, split_page};
use crate::http::respond::json;
use crate::request::{query_pairs, read_body, read_json_body};
use crate::results::retention;
use crate::state::Ctx;
use crate::domain::time::month_key;
use crate::limiter::snapshot::ClientSnapshot;
use crate::store::dashboard;
use futures_util::future::join;
use crate::store::clients::{self as store, ClientRow, KeyRow};
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Request, Response};

const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

pub async fn list(req: &mut Request, ctx: &Ctx, _admin: &AdminSession) -> ApiResult<Response> {
    let (limit, after) = page_params(&query_pairs(req)?)?;
    let rows = store::list(&ctx.db, limit + 1, after.as_ref()).await?;
    let (rows, next_cursor) = split_page(rows, limit, |r| Cursor { created_at: r.created_at, id: r.id.clone() });
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let month = month_key(ctx.now);
    let (keys, activity) = join(store::keys_of(&ctx.db, &ids), dashboard::activity_of(&ctx.db, &ids, &month)).await;
    let (keys, activity) = (keys?, activity?);
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let own: Vec<&KeyRow> = keys.iter().filter(|k| k.client_id == row.id).collect();
            let mut view = client_view(row, &own, ctx.now);
            let seen = activity.iter().find(|a| a.client_id == row.id);
            view["usage_this_month"] = json!(seen.and_then(|a| a.used_this_month).unwrap_or(0));
            view["failed_this_month"] = json!(seen.and_then(|a| a.failed_this_month).unwrap_or(0));
            view["last_generation_at"] = json!(seen.and_then(|a| a.last_generation_at).map(to_rfc3339));
            view
        })
        .collect();
    json(200, &json!({ "data": data, "next_cursor": next_cursor }))
}

pub async fn create(req: &mut Request, ctx: &Ctx, _admin: &AdminSession) -> ApiResult<Response> {
    let body = read_json_body(req, 64 * 1024).await?;
    let new = NewClient::from_json(&body)?;
    let id = ClientId::generate();
    let key = ApiKey::generate(&id, KeyKind::Secret);
    let key_id = new_id("key");
    store::create(&ctx.db, &id, &new, &key, &key_id, ctx.now).await?;
    sync_limiter(ctx, &id).await?;
    let row = store::get(&ctx.db, &id).await?.ok_or_else(|| ApiError::Internal("client vanished after insert".into()))?;
    let keys = store::keys(&ctx.db, &id).await?;
    json(
        201,
        &json!({
            "client": client_view(&row, &keys.iter().collect::<Vec<_>>(), ctx.now),
            "api_key": key.reveal(),
            "api_key_notice": "This is the only time the full key is shown. Store it now; only its prefix is kept.",
        }),
    )
}

pub async fn show(ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let (row, keys) = load(ctx, id).await?;
    json(200, &client_view(&row, &keys.iter().collect::<Vec<_>>(), ctx.now))
}

pub async fn update(req: &mut Request, ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    let body = read_json_body(req, 64 * 1024).await?;
    let changes = ClientChanges::from_json(&body, ctx.config.image_policy.allow_loopback_http)?;
    if let Some(Some(days)) = changes.retention_days {
        // A row is deleted at RETENTION_DAYS, and its image cannot outlive it.
        if u64::from(days) > ctx.config.retention_days {
            return Err(ApiError::invalid(
                "invalid_retention",
                format!("`retention_days` can shorten the service's {} days, not extend them", ctx.config.retention_days),
            ));
        }
    }
    let sets_callback = matches!(changes.webhook_url, Some(Some(_)));
    if sets_callback && ctx.config.webhook_signing_key.is_none() {
        return Err(ApiError::Unavailable { message: "job callbacks are not configured (WEBHOOK_SIGNING_KEY is not set)".into() });
    }
    let mut row = store::update(&ctx.db, &client, &changes, ctx.now).await?.ok_or_else(no_such_client)?;
    if changes.touches_limits() {
        sync_limiter(ctx, &client).await?;
    }
    // The first callback URL comes with its signing secret, shown this once.
    let mut secret = None;
    if sets_callback && row.webhook_secret_version == 0 {
        row.webhook_secret_version = store::bump_webhook_secret(&ctx.db, &client, ctx.now).await?.ok_or_else(no_such_client)?;
        secret = Some(webhook_secret(ctx, &row)?);
    }
    let keys = store::keys(&ctx.db, &client).await?;
    let mut view = client_view(&row, &keys.iter().collect::<Vec<_>>(), ctx.now);
    if let Some(secret) = secret {
        view["webhook_secret"] = json!(secret);
        view["webhook_secret_notice"] = json!("This is the only time the secret is shown. Use it to verify our webhook-signature headers.");
    }
    json(200, &view)
}

/// Deletes a client: at once, its keys stop working and it disappears from
/// the lists; then its result images and generation rows are erased, in
/// batches (what one request leaves, the cron finishes; `complete` says
/// which). Its usage rollups stay, so past invoices still add up, and its
/// row stays as an inactive tombstone that names it on them.
pub async fn delete(ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    let deleted_at = store::tombstone(&ctx.db, &client, ctx.now).await?.ok_or_else(no_such_client)?;
    sync_limiter(ctx, &client).await?;
    let erased = retention::erase_client(&ctx.db, &ctx.results, &client, ctx.now, retention::ERASURE_BATCHES).await?;
    json(
        200,
        &json!({
            "id": client,
            "deleted_at": to_rfc3339(deleted_at),
            "erasure": {
                "images_deleted": erased.images,
                "generations_deleted": erased.generations,
                "complete": erased.complete,
            },
        }),
    )
}

/// Starts a new callback signing secret; the previous one stops verifying.
pub async fn rotate_webhook_secret(ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    if ctx.config.webhook_signing_key.is_none() {
        return Err(ApiError::Unavailable { message: "job callbacks are not configured (WEBHOOK_SIGNING_KEY is not set)".into() });
    }
    let version = store::bump_webhook_secret(&ctx.db, &client, ctx.now).await?.ok_or_else(no_such_client)?;
    let row = store::get(&ctx.db, &client).await?.ok_or_else(no_such_client)?;
    json(
        201,
        &json!({
            "webhook_secret": webhook_secret(ctx, &row)?,
            "webhook_secret_version": version,
            "webhook_secret_notice": "This is the only time the secret is shown. Use it to verify our webhook-signature headers.",
        }),
    )
}

fn webhook_secret(ctx: &Ctx, row: &ClientRow) -> ApiResult<String> {
    let master = ctx.config.webhook_signing_key.as_ref().ok_or_else(|| ApiError::Internal("no signing key".into()))?;
    Ok(format_secret(&derive_secret(master.expose().as_bytes(), &row.id, row.webhook_secret_version)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotation {
    #[serde(default)]
    grace_period_seconds: u64,
    /// `secret` (default) or `publishable`.
    #[serde(default)]
    kind: KeyKind,
}

/// Issues a new key of a kind. The client's other keys of that kind stop
/// working at once, or after `grace_period_seconds` (at most 7 days) so a
/// shop can deploy the new key first.
pub async fn rotate_key(req: &mut Request, ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let (row, _) = load(ctx, id).await?;
    // The body is optional: an empty one rotates with no grace period.
    let body = read_body(req, 4096).await?;
    let rotation: Rotation = if body.iter().all(u8::is_ascii_whitespace) { Rotation::default() } else { parse_json(&body)? };
    if rotation.grace_period_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid("invalid_grace_period", format!("`grace_period_seconds` must be at most {MAX_GRACE_SECONDS}")));
    }
    let client = parse_client_id(&row.id)?;
    let key = ApiKey::generate(&client, rotation.kind);
    let key_id = new_id("key");
    let grace_ms = rotation.grace_period_seconds * 1000;
    let notice = match rotation.kind {
        KeyKind::Secret => "This is the only time the full key is shown. Store it now; only its prefix is kept.",
        KeyKind::Publishable => "A publishable key is public by design: put it in the shop's pages. It works only from the client's allowed origins, and can only create and follow try-ons.",
    };
    store::rotate_key(&ctx.db, &key, &key_id, ctx.now, grace_ms).await?;
    sync_limiter(ctx, &client).await?;
    let keys = store::keys(&ctx.db, &client).await?;
    json(
        201,
        &json!({
            "key": keys.iter().find(|k| k.id == key_id).map(|k| key_view(k, ctx.now)),
            "api_key": key.reveal(),
            "api_key_notice": notice,
            "previous_keys_expire_at": to_rfc3339(ctx.now + grace_ms),
            "client": client_view(&row, &keys.iter().collect::<Vec<_>>(), ctx.now),
        }),
    )
}

pub async fn revoke_key(ctx: &Ctx, _admin: &AdminSession, id: &str, key_id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    if !store::revoke_key(&ctx.db, &client, key_id, ctx.now).await? {
        return Err(ApiError::not_found("no such key for this client"));
    }
    sync_limiter(ctx, &client).await?;
    let keys = store::keys(&ctx.db, &client).await?;
    let key = keys.iter().find(|k| k.id == key_id).ok_or_else(|| ApiError::not_found("no such key for this client"))?;
    json(200, &key_view(key, ctx.now))
}

/// The limiter object is the authority on keys and limits for the hot path:
/// it learns of every change before the admin gets an answer, so a revoked
/// key or a lowered limit applies to the very next request.
///
/// Except before it exists: a Durable Object is placed near the first
/// request for it and never moves, and that must be the shop's first API
/// request, not an operator's action. Until then the change is only in D1,
/// where the object reads it when it is created (`limits_for_object` notes
/// its creation in the same batch, so no change falls between the two).
async fn sync_limiter(ctx: &Ctx, client: &ClientId) -> ApiResult<()> {
    let limits = store::limits_of(&ctx.db, client, ctx.now).await?;
    if limits.row.as_ref().is_some_and(|row| row.limiter_created_at.is_none()) {
        return Ok(());
    }
    let snapshot = ClientSnapshot::from_store(client.as_str(), limits, ctx.now);
    ctx.limiter.sync(snapshot).await.map_err(|e| ApiError::Unavailable {
        message: format!("the change is saved but the limiter could not be updated ({e:?}); retry the request"),
    })
}

pub fn parse_client_id(id: &str) -> ApiResult<ClientId> {
    ClientId::parse(id).ok_or_else(no_such_client)
}

fn no_such_client() -> ApiError {
    ApiError::not_found("no such client")
}

async fn load(ctx: &Ctx, id: &str) -> ApiResult<(ClientRow, Vec<KeyRow>)> {
    let client = parse_client_id(id)?;
    let row = store::get(&ctx.db, &client).await?.ok_or_else(no_such_client)?;
    let keys = store::keys(&ctx.db, &client).await?;
    Ok((row, keys))
}

pub fn client_view(row: &ClientRow, keys: &[&KeyRow], now: u64) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "active": row.is_active(),
        "usage_limit": row.usage_limit,
        "rate_limit_per_minute": row.rate_limit_per_minute,
        "rate_limit_burst": row.rate_limit_burst,
        "max_concurrent": row.max_concurrent,
        "allowed_origins": row.origins(),
        "widget_rate_limit_per_minute": row.widget_rate_limit_per_minute,
        "shopper_rate_limit_per_minute": row.shopper_rate_limit_per_minute,
        "shopper_daily_limit": row.shopper_daily_limit,
        "webhook_url": row.webhook_url,
        "webhook_secret_version": row.webhook_secret_version,
        "retention_days": row.retention_days,
        "webhook_events": row.callback_types(),
        "callbacks_paused_at": row.callbacks_paused_at.map(to_rfc3339),
        "callbacks_failing_since": row.callbacks_failing_since.map(to_rfc3339),
        "created_at": to_rfc3339(row.created_at),
        "updated_at": to_rfc3339(row.updated_at),
        "keys": keys.iter().map(|k| key_view(k, now)).collect::<Vec<_>>(),
    })
}

fn key_view(k: &KeyRow, now: u64) -> Value {
    let status = match (k.revoked_at, k.expires_at) {
        (Some(_), _) => "revoked",
        (None, Some(t)) if t <= now => "expired",
        (None, Some(_)) => "expiring",
        (None, None) => "active",
    };
    json!({
        "id": k.id,
        "kind": k.kind,
        "prefix": k.prefix,
        // Public by design: the dashboard shows it whole, with its embed snippet.
        "key": k.publishable_key,
        "status": status,
        "created_at": to_rfc3339(k.created_at),
        "expires_at": k.expires_at.map(to_rfc3339),
        "revoked_at": k.revoked_at.map(to_rfc3339),
    })
}
