//! The job lifecycle. A job ends exactly once, whichever way its end is
//! learnt — FAL's webhook, a read that polls FAL, a cancel — because ending
//! it means inserting its generation row, whose id is derived from the job id:
//! D1's primary key decides who got there first, and only that caller
//! updates the job, settles the quota and tells the client's back end.

use super::settle::finish;
use crate::domain::generation::{GenerationRequest, Outcome};
use crate::domain::ids::ClientId;
use crate::domain::job::{generation_id_of, Job, JobOutcome, JobStatus};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::fal::models::{FalFailure, QueueStatus};
use crate::results;
use crate::state::Ctx;
use crate::store::generations::{record, GenerationRow, Recorded};

pub const ENDPOINT: &str = "/api/jobs";

/// A job holds its quota unit and concurrency slot at most this long; if it
/// has not finished by then, the limiter settles it from D1 (a success that
/// arrives later is still charged, once).
pub const JOB_RESERVATION_MS: u64 = 15 * 60 * 1000;

/// How an attempt to end a job went.
pub enum Completion {
    /// This call ended the job; here it is, finished.
    Ended(Job),
    /// Someone else had already ended it; here it is as they left it.
    AlreadyEnded(Job),
}

impl Completion {
    pub fn job(&self) -> &Job {
        match self {
            Completion::Ended(job) | Completion::AlreadyEnded(job) => job,
        }
    }

    pub fn into_job(self) -> Job {
        match self {
            Completion::Ended(job) | Completion::AlreadyEnded(job) => job,
        }
    }
}

/// How a cancel request went.
pub enum Cancellation {
    Canceled(Job),
    /// The job had already ended (perhaps at FAL, just now): how it ended.
    AlreadyFinished(Job),
}

/// Sends the request to FAL's queue with our webhook URL and stores the job.
/// If FAL refuses it, the job ends at once, recorded as an error, and the
/// refusal is returned.
pub async fn submit(ctx: &Ctx, client: &ClientId, job_id: String, request: &GenerationRequest, webhook_url: &str) -> ApiResult<Job> {
    let submitted = ctx.timed("fal", ctx.fal.submit(request, webhook_url)).await;
    let mut job = Job {
        id: job_id,
        status: JobStatus::Queued,
        created_at: ctx.now,
        fal_start: Some(ctx.now),
        fal_end: None,
        completed_at: None,
        image_url: None,
        error: None,
        client_id: client.to_string(),
        garments_count: request.garments.len() as u64,
        model: request.model.as_str().to_string(),
        description: None,
        queue_position: None,
        fal: None,
    };
    match submitted {
        Ok(refs) => {
            job.fal = Some(refs);
            ctx.timed("store", ctx.jobs.put(&job, ctx.now, ctx.config.job_ttl_s)).await?;
            Ok(job)
        }
        Err(failure) => {
            complete(ctx, job, JobOutcome::Failed { error: failure.describe() }).await?;
            Err(ApiError::Upstream(failure))
        }
    }
}

/// Ends `job` with `outcome`, unless someone else already did.
pub async fn complete(ctx: &Ctx, mut job: Job, outcome: JobOutcome) -> ApiResult<Completion> {
    // Results: FAL's image is checked (and its copy to our bucket started) before the job counts as done.
    let (outcome, capture) = results::keep::check_job_outcome(ctx, outcome).await;
    let kept = results::keep::kept(&capture);
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
        result_status: kept.status,
        result_content_type: kept.content_type,
        result_bytes: kept.bytes,
        result_error: kept.error,
    };
    let recorded = ctx.timed("store", record(&ctx.db, &row)).await;
    // Results: the copy runs on after the answer, unless another caller recorded the job (theirs copies).
    let recorded_here = matches!(recorded, Ok(Recorded::New));
    results::keep::copy_after_answer(ctx, capture, &row, recorded_here);
    if recorded? == Recorded::AlreadyRecorded {
        // Someone else ended it first; theirs is the record.
        let current = ctx.jobs.get(&job.id).await?.unwrap_or(job);
        return Ok(Completion::AlreadyEnded(current));
    }
    events::generation_recorded(ctx, &row);
    job.finish(&outcome, now);
    ctx.timed("store", ctx.jobs.put(&job, now, ctx.config.job_ttl_s)).await?;
    let client = ClientId::parse(&job.client_id).ok_or_else(|| ApiError::Internal(format!("job {} has a bad client id", job.id)))?;
    finish(ctx, &client, Some((job.id.clone(), status.into())), None).await;
    if job.status != JobStatus::Canceled {
        events::job_finished(ctx, &job);
    }
    Ok(Completion::Ended(job))
}

/// Asks FAL how an unfinished job is doing — for reads when no webhook has
/// come. A COMPLETED request may still have failed: its result says.
pub async fn poll(ctx: &Ctx, mut job: Job) -> ApiResult<Job> {
    let Some(refs) = job.fal.clone() else { return Ok(job) };
    let status = match ctx.timed("fal", ctx.fal.queue_status(&refs)).await {
        Ok(s) => s,
        Err(e) => {
            worker::console_warn!("polling FAL for {} failed: {}", job.id, e.describe());
            return Ok(job);
        }
    };
    let (next, position) = match status {
        QueueStatus::Completed => {
            let outcome = match ctx.timed("fal", ctx.fal.queue_result(&refs)).await {
                Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
                Err(f) if is_transient(&f) => return Ok(job),
                Err(f) => JobOutcome::Failed { error: f.describe() },
            };
            return complete(ctx, job, outcome).await.map(Completion::into_job);
        }
        QueueStatus::InProgress => (JobStatus::Processing, None),
        QueueStatus::InQueue { position } => (JobStatus::Queued, position),
    };
    if (job.status, job.queue_position) != (next, position) {
        job.status = next;
        job.queue_position = position;
        // KV takes one write per key per second: only changes are written.
        ctx.jobs.put(&job, ctx.now, ctx.config.job_ttl_s).await?;
    }
    Ok(job)
}

/// Cancels at FAL and ends the job as `canceled`, which costs no quota. A
/// job that already finished (or finishes first at FAL) cannot be canceled.
pub async fn cancel(ctx: &Ctx, job: Job) -> ApiResult<Cancellation> {
    if job.status.is_finished() {
        return Ok(Cancellation::AlreadyFinished(job));
    }
    let Some(refs) = job.fal.clone() else {
        return Err(ApiError::Internal(format!("job {} has no FAL request", job.id)));
    };
    if ctx.timed("fal", ctx.fal.cancel(&refs)).await? {
        return Ok(match complete(ctx, job, JobOutcome::Canceled).await? {
            Completion::Ended(job) => Cancellation::Canceled(job),
            Completion::AlreadyEnded(job) => Cancellation::AlreadyFinished(job),
        });
    }
    // FAL had already finished it: record how, then refuse.
    let outcome = match ctx.fal.queue_result(&refs).await {
        Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
        Err(f) if is_transient(&f) => return Err(ApiError::Upstream(f)),
        Err(f) => JobOutcome::Failed { error: f.describe() },
    };
    Ok(Cancellation::AlreadyFinished(complete(ctx, job, outcome).await?.into_job()))
}

/// Failures that say nothing about the request itself: try again later.
pub fn is_transient(f: &FalFailure) -> bool {
    matches!(f, FalFailure::Network { .. } | FalFailure::Timeout { .. } | FalFailure::Busy)
}
