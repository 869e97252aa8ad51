//! The result columns of generation rows: how our copy of each image is
//! doing, and the rows the result route, the copy retries and retention
//! look up. Status changes are conditional on the status they expect, so a
//! late copy never revives an image that retention or erasure removed.

use super::{all, execute, first};
use crate::args;
use crate::domain::generation::Outcome;
use crate::domain::ids::ClientId;
use crate::domain::result::ResultStatus;
use crate::error::ApiResult;
use serde::Deserialize;
use worker::D1Database;

/// Our copy is in the bucket. False when the row is not waiting for one
/// (gone, or its image deleted meanwhile).
pub async fn mark_stored(db: &D1Database, client_id: &str, generation_id: &str) -> ApiResult<bool> {
    let changed = execute(
        db,
        "UPDATE generations SET result_status = 'stored', result_error = NULL
         WHERE id = ?1 AND client_id = ?2 AND result_status IN ('pending', 'failed')",
        args![generation_id, client_id],
    )
    .await?;
    Ok(changed > 0)
}

/// A copy attempt failed: the row says why, and stays `pending` (to be
/// retried) or becomes `failed` (given up).
pub async fn note_copy_failure(db: &D1Database, client_id: &str, generation_id: &str, error: &str, status: ResultStatus) -> ApiResult<()> {
    execute(
        db,
        "UPDATE generations SET result_status = ?3, result_error = ?4 WHERE id = ?1 AND client_id = ?2 AND result_status = 'pending'",
        args![generation_id, client_id, status.as_str(), error],
    )
    .await?;
    Ok(())
}

/// What the result route needs to know when the bucket has no object.
#[derive(Debug, Deserialize)]
pub struct ResultRecord {
    pub status: Outcome,
    pub result_status: Option<ResultStatus>,
    pub image_url: Option<String>,
}

pub async fn record_of(db: &D1Database, client: &ClientId, generation_id: &str) -> ApiResult<Option<ResultRecord>> {
    first(
        db,
        "SELECT status, result_status, image_url FROM generations WHERE id = ?1 AND client_id = ?2",
        args![generation_id, client.as_str()],
    )
    .await
}

/// A generation whose image is to be copied again.
#[derive(Debug, Deserialize)]
pub struct PendingCopy {
    pub id: String,
    pub client_id: String,
    pub image_url: Option<String>,
}

/// Pending copies created in `[from, to)`, oldest first.
pub async fn pending_between(db: &D1Database, from: u64, to: u64, limit: u32) -> ApiResult<Vec<PendingCopy>> {
    all(
        db,
        "SELECT id, client_id, image_url FROM generations
         WHERE result_status = 'pending' AND created_at >= ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3",
        args![from, to, limit],
    )
    .await
}

/// Pending copies created before `cutoff` are given up: FAL has deleted its
/// file by then (we asked it to), so no retry can work.
pub async fn give_up_pending_before(db: &D1Database, cutoff: u64, limit: u32) -> ApiResult<u64> {
    execute(
        db,
        "UPDATE generations SET result_status = 'failed',
           result_error = 'not copied before FAL deleted its file' || COALESCE(' (last error: ' || result_error || ')', '')
         WHERE id IN (SELECT id FROM generations WHERE result_status = 'pending' AND created_at < ?1 ORDER BY created_at LIMIT ?2)",
        args![cutoff, limit],
    )
    .await
}

/// An image in the bucket (or on its way there).
#[derive(Debug, Deserialize)]
pub struct HeldImage {
    pub id: String,
    pub client_id: String,
}

/// Held images of every client created before `cutoff`, oldest first.
pub async fn held_before(db: &D1Database, cutoff: u64, limit: u32) -> ApiResult<Vec<HeldImage>> {
    all(
        db,
        "SELECT id, client_id FROM generations
         WHERE result_status IN ('pending', 'stored') AND created_at < ?1 ORDER BY created_at LIMIT ?2",
        args![cutoff, limit],
    )
    .await
}

/// Held images of one client created before `cutoff`, oldest first.
pub async fn held_by_client_before(db: &D1Database, client_id: &str, cutoff: u64, limit: u32) -> ApiResult<Vec<HeldImage>> {
    all(
        db,
        "SELECT id, client_id FROM generations
         WHERE result_status IN ('pending', 'stored') AND client_id = ?1 AND created_at < ?2 ORDER BY created_at LIMIT ?3",
        args![client_id, cutoff, limit],
    )
    .await
}

/// The images of these generations were deleted from the bucket.
pub async fn mark_deleted(db: &D1Database, ids: &[String]) -> ApiResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    execute(
        db,
        "UPDATE generations SET result_status = 'deleted'
         WHERE id IN (SELECT value FROM json_each(?1)) AND result_status IN ('pending', 'stored')",
        args![serde_json::to_string(ids)?],
    )
    .await
}

/// Deletes up to `limit` generation rows of one client (its erasure).
pub async fn delete_rows_of(db: &D1Database, client: &ClientId, limit: u32) -> ApiResult<u64> {
    execute(
        db,
        "DELETE FROM generations WHERE id IN (SELECT id FROM generations WHERE client_id = ?1 LIMIT ?2)",
        args![client.as_str(), limit],
    )
    .await
}
