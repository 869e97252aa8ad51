//! Keeping the bucket in step with the rows, from the cron (and, for one
//! client, from its deletion): retry copies that failed, give up those FAL
//! can no longer serve, delete images past retention, erase deleted
//! clients. Every step works in bounded batches — R2 deletes at most 1,000
//! keys per call — and what a run leaves is done by the next.

use super::capture::{capture, store_and_note, Capture};
use crate::config::Config;
use crate::domain::ids::ClientId;
use crate::domain::result::{client_prefix, object_key, ResultStatus};
use crate::domain::time::DAY_MS;
use crate::error::ApiResult;
use crate::store::clients::{being_erased, mark_erased, retention_overrides};
use crate::store::result_rows::{delete_rows_of, give_up_pending_before, held_before, held_by_client_before, mark_deleted, note_copy_failure, pending_between, HeldImage};
use crate::store::results::ResultBucket;
use worker::D1Database;

/// R2's most keys per delete call, and our batch everywhere.
const BATCH: u32 = 1_000;
/// Image deletions per run: 25,000 an hour is 600,000 a day.
const MAX_DELETE_BATCHES: u32 = 25;
/// Copies retried per run (each a download and an upload).
const MAX_RETRIES: u32 = 50;
/// A copy is retried only once it had time to finish on its own.
const RETRY_AFTER_MS: u64 = 2 * 60 * 1000;
/// A deleted client is swept again this long after it was first found empty,
/// for generations of jobs that were still running at FAL.
const ERASURE_RECHECK_MS: u64 = DAY_MS;
/// Batches of keys and of rows per client per erasure pass.
pub const ERASURE_BATCHES: u32 = 5;
const MAX_ERASURES: u32 = 20;

/// Copies again the images of successful generations still `pending`, for
/// as long as FAL keeps its files. Returns how many are now stored.
pub async fn retry_copies(db: &D1Database, bucket: &ResultBucket, config: &Config, now: u64) -> ApiResult<u64> {
    let from = now.saturating_sub(config.fal.output_expiration_s * 1000);
    let due = pending_between(db, from, now.saturating_sub(RETRY_AFTER_MS), MAX_RETRIES).await?;
    let mut stored = 0;
    for row in due {
        let Some(url) = row.image_url.as_deref() else {
            note_copy_failure(db, &row.client_id, &row.id, "no FAL URL was recorded", ResultStatus::Failed).await?;
            continue;
        };
        match capture(url, config.max_result_bytes).await {
            Capture::Started(copy) => stored += u64::from(store_and_note(db, bucket, copy, &row.client_id, &row.id).await),
            Capture::Refused(refusal) => note_copy_failure(db, &row.client_id, &row.id, &refusal.describe(), ResultStatus::Failed).await?,
            Capture::Unreachable(reason) => note_copy_failure(db, &row.client_id, &row.id, &reason, ResultStatus::Pending).await?,
        }
    }
    Ok(stored)
}

/// Copies still `pending` when FAL's file has expired are given up.
pub async fn give_up_copies(db: &D1Database, config: &Config, now: u64) -> ApiResult<u64> {
    give_up_pending_before(db, now.saturating_sub(config.fal.output_expiration_s * 1000), BATCH).await
}

/// Deletes images older than `RETENTION_DAYS`, and those of clients who keep
/// theirs less long (an override longer than `RETENTION_DAYS` is capped by
/// it: the row that finds the image is deleted then). Rows stay, marked
/// `deleted`, until their own retention. Returns how many images went.
pub async fn delete_past_retention(db: &D1Database, bucket: &ResultBucket, config: &Config, now: u64) -> ApiResult<u64> {
    let mut budget = MAX_DELETE_BATCHES;
    let mut deleted = sweep(db, bucket, None, now.saturating_sub(config.retention_days * DAY_MS), &mut budget).await?;
    for client in retention_overrides(db).await? {
        if client.retention_days >= config.retention_days || budget == 0 {
            continue;
        }
        let cutoff = now.saturating_sub(client.retention_days * DAY_MS);
        deleted += sweep(db, bucket, Some(&client.id), cutoff, &mut budget).await?;
    }
    Ok(deleted)
}

/// Deletes held images created before `cutoff` (of one client, or of all),
/// objects first: a row marked `deleted` never points at a live object.
async fn sweep(db: &D1Database, bucket: &ResultBucket, client: Option<&str>, cutoff: u64, budget: &mut u32) -> ApiResult<u64> {
    let mut deleted = 0;
    while *budget > 0 {
        *budget -= 1;
        let due: Vec<HeldImage> = match client {
            Some(id) => held_by_client_before(db, id, cutoff, BATCH).await?,
            None => held_before(db, cutoff, BATCH).await?,
        };
        if due.is_empty() {
            break;
        }
        bucket.delete(due.iter().map(|h| object_key(&h.client_id, &h.id)).collect()).await?;
        let ids: Vec<String> = due.iter().map(|h| h.id.clone()).collect();
        mark_deleted(db, &ids).await?;
        deleted += ids.len() as u64;
        if (ids.len() as u32) < BATCH {
            break;
        }
    }
    Ok(deleted)
}

/// What one erasure pass removed, and whether nothing is left.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    pub images: u64,
    pub generations: u64,
    pub complete: bool,
}

/// Erases a deleted client's data: its images (by prefix, so even images
/// whose rows are gone) and its generation rows, in at most `batches`
/// batches of each. Its usage rollups stay, for invoicing.
pub async fn erase_client(db: &D1Database, bucket: &ResultBucket, client: &ClientId, now: u64, batches: u32) -> ApiResult<Erasure> {
    let prefix = client_prefix(client.as_str());
    let mut erasure = Erasure::default();
    let (mut images_done, mut rows_done) = (false, false);
    for _ in 0..batches {
        let keys = bucket.keys_under(&prefix, BATCH).await?;
        if keys.is_empty() {
            images_done = true;
            break;
        }
        erasure.images += keys.len() as u64;
        bucket.delete(keys).await?;
    }
    for _ in 0..batches {
        let n = delete_rows_of(db, client, BATCH).await?;
        erasure.generations += n;
        if n < u64::from(BATCH) {
            rows_done = true;
            break;
        }
    }
    erasure.complete = images_done && rows_done;
    if erasure.complete {
        mark_erased(db, client, now).await?;
    }
    Ok(erasure)
}

/// Continues the erasure of deleted clients. Returns how many images went.
pub async fn erase_deleted_clients(db: &D1Database, bucket: &ResultBucket, now: u64) -> ApiResult<u64> {
    let mut images = 0;
    for client in being_erased(db, now, ERASURE_RECHECK_MS, MAX_ERASURES).await? {
        images += erase_client(db, bucket, &client, now, ERASURE_BATCHES).await?.images;
    }
    Ok(images)
}
