//! The job lifecycle. A job ends exactly once, whichever way its end is
//! learnt — FAL's webhook, a read that polls FAL, a cancel — because ending
//! it means inserting its generation row, whose id is derived from the job id:
//! D1's primary key decides who got there first, and only that caller
//! updates the job, settles the quota and calls the client back.

use crate::callbacks;
use crate::domain::job::{generation_id_of, Job, JobOutcome, JobStatus};
use crate::error::ApiResult;
use crate::fal::client::{queue_result, queue_status};
use crate::fal::models::{FalFailure, QueueStatus};
use crate::http::generate::settlement_of;
use crate::http::{idempotency, Ctx};
use crate::store::generations::{record, GenerationRow, Outcome};
use crate::store::jobs;
use serde_json::{json, Value};
use worker::kv::KvStore;

pub const ENDPOINT: &str = "/api/jobs";

pub fn kv(ctx: &Ctx) -> ApiResult<KvStore> {
    Ok(ctx.env.kv(jobs::BINDING)?)
}

/// Ends `job` with `outcome`. Returns the job as it now stands, and whether
/// this call was the one that ended it.
pub async fn complete(ctx: &Ctx, mut job: Job, outcome: JobOutcome) -> ApiResult<(Job, bool)> {
    let now = ctx.now;
    let (status, image_url, error) = match &outcome {
        JobOutcome::Done { image_url, .. } => (Outcome::Success, Some(image_url.clone()), None),
        JobOutcome::Failed { error } => (Outcome::Error, None, Some(error.clone())),
        JobOutcome::Canceled => (Outcome::Canceled, None, Some("canceled by the client".to_string())),
    };
    let row = GenerationRow {
        id: generation_id_of(&job.id),
        client_id: job.client_id.clone(),
        model: job.model.clone(),
        status,
        endpoint: ENDPOINT.to_string(),
        duration_ms: now.saturating_sub(job.created_at),
        fal_duration_ms: job.fal_start.map(|start| now.saturating_sub(start)),
        image_url,
        error,
        garments_count: job.garments_count,
        cold_start: 0,
        job_id: Some(job.id.clone()),
        created_at: job.created_at,
    };
    let kv = kv(ctx)?;
    if let Err(e) = ctx.timed("store", record(&ctx.db, &row)).await {
        if !format!("{e:?}").contains("UNIQUE") {
            return Err(e);
        }
        // Someone else ended it first; theirs is the record.
        let current = jobs::get(&kv, &job.id).await?.unwrap_or(job);
        return Ok((current, false));
    }
    crate::metrics::forward_in_background(ctx, &row);
    job.finish(&outcome, now);
    ctx.timed("store", jobs::put(&kv, &job, now, ctx.config.job_ttl_s)).await?;
    let client = crate::domain::ids::ClientId::parse(&job.client_id)
        .ok_or_else(|| crate::error::ApiError::Internal(format!("job {} has a bad client id", job.id)))?;
    idempotency::finish(ctx, &client, Some((job.id.clone(), settlement_of(status))), None).await;
    if job.status != JobStatus::Canceled {
        callbacks::notify_in_background(ctx, &job);
    }
    Ok((job, true))
}

/// Asks FAL how an unfinished job is doing — for reads when no webhook has
/// come. A COMPLETED request may still have failed: its result says.
pub async fn poll(ctx: &Ctx, mut job: Job) -> ApiResult<Job> {
    let Some(refs) = job.fal.clone() else { return Ok(job) };
    let status = match ctx.timed("fal", queue_status(&ctx.config, &refs)).await {
        Ok(s) => s,
        Err(e) => {
            worker::console_warn!("polling FAL for {} failed: {}", job.id, e.describe());
            return Ok(job);
        }
    };
    let (next, position) = match status {
        QueueStatus::Completed => {
            let outcome = match ctx.timed("fal", queue_result(&ctx.config, &refs)).await {
                Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
                Err(f) if is_transient(&f) => return Ok(job),
                Err(f) => JobOutcome::Failed { error: f.describe() },
            };
            return complete(ctx, job, outcome).await.map(|(job, _)| job);
        }
        QueueStatus::InProgress => (JobStatus::Processing, None),
        QueueStatus::InQueue { position } => (JobStatus::Queued, position),
    };
    if (job.status, job.queue_position) != (next, position) {
        job.status = next;
        job.queue_position = position;
        // KV takes one write per key per second: only changes are written.
        jobs::put(&kv(ctx)?, &job, ctx.now, ctx.config.job_ttl_s).await?;
    }
    Ok(job)
}

/// Failures that say nothing about the request itself: try again later.
pub fn is_transient(f: &FalFailure) -> bool {
    matches!(f, FalFailure::Network { .. } | FalFailure::Timeout { .. } | FalFailure::Busy)
}

/// What a client sees of its job (times in ms since the epoch, as the MVP's JobData).
pub fn view(job: &Job) -> Value {
    json!({
        "id": job.id,
        "status": job.status,
        "created_at": job.created_at,
        "fal_start": job.fal_start,
        "fal_end": job.fal_end,
        "completed_at": job.completed_at,
        "image_url": job.image_url,
        "error": job.error,
        "client_id": job.client_id,
        "garments_count": job.garments_count,
        "model": job.model,
        "description": job.description,
        "queue_position": job.queue_position,
        "generation_id": job.status.is_finished().then(|| generation_id_of(&job.id)),
    })
}
