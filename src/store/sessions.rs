//! Admin sessions, keyed by the SHA-256 of their token.

use super::{execute, first};
use crate::args;
use crate::domain::session::SessionTimes;
use crate::error::ApiResult;
use serde::Deserialize;
use worker::D1Database;

#[derive(Deserialize)]
struct Row {
    created_at: u64,
    last_seen_at: u64,
    expires_at: u64,
}

pub async fn create(db: &D1Database, token_hash: &str, now: u64, expires_at: u64) -> ApiResult<()> {
    execute(
        db,
        "INSERT INTO admin_sessions (token_hash, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?2, ?3)",
        args![token_hash, now, expires_at],
    )
    .await?;
    Ok(())
}

pub async fn get(db: &D1Database, token_hash: &str) -> ApiResult<Option<SessionTimes>> {
    let row: Option<Row> = first(
        db,
        "SELECT created_at, last_seen_at, expires_at FROM admin_sessions WHERE token_hash = ?1",
        args![token_hash],
    )
    .await?;
    Ok(row.map(|r| SessionTimes { created_at: r.created_at, last_seen_at: r.last_seen_at, expires_at: r.expires_at }))
}

pub async fn touch(db: &D1Database, token_hash: &str, now: u64) -> ApiResult<()> {
    execute(db, "UPDATE admin_sessions SET last_seen_at = ?2 WHERE token_hash = ?1", args![token_hash, now]).await?;
    Ok(())
}

pub async fn delete(db: &D1Database, token_hash: &str) -> ApiResult<()> {
    execute(db, "DELETE FROM admin_sessions WHERE token_hash = ?1", args![token_hash]).await?;
    Ok(())
}

/// Removes sessions past their absolute expiry or idle for longer than `idle_ms`.
pub async fn purge_expired(db: &D1Database, now: u64, idle_ms: u64) -> ApiResult<u64> {
    execute(
        db,
        "DELETE FROM admin_sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
        args![now, now.saturating_sub(idle_ms)],
    )
    .await
}
