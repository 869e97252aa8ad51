//! The job lifecycle. A job's live state is kept by its client's limiter
//! object, where changes are strongly consistent and ordered (status only
//! moves forward); KV keeps a copy with the job's TTL, written when it is
//! created and when it ends, off the path that decides anything (KV takes
//! one write per key per second, and a fast job ends within that second).
//!
//! A job ends exactly once, whichever way its end is learnt — FAL's webhook,
//! a reader that polls FAL, a status stream following FAL, a cancel: its
//! generation row's primary key (derived from the job id) makes the record
//! unique, and the object's `finish` decides who ended it — only that caller
//! tells the client's back end. Both are safe to repeat, so a caller that
//! fails between them is simply retried (FAL retries webhooks).

use crate::domain::generation::GenerationRequest;
use crate::domain::ids::ClientId;
use crate::domain::job::{Job, JobOutcome, JobStatus};
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::fal::models::{FalFailure, QueueStatus};
use crate::limiter::jobs::JobState;
use crate::limiter::protocol::{JobCreate, JobFinish, JobProgress};
use crate::results;
use crate::state::Ctx;
use crate::store::generations::{record, GenerationRow, Recorded};
use std::time::Duration;
use worker::Delay;

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

/// Sends the request to FAL's queue with our webhook URL and keeps the job.
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
        shopper_id: request.shopper_id.as_ref().map(|s| s.as_str().to_string()),
        metadata: request.metadata.clone(),
    };
    match submitted {
        Ok((refs, position)) => {
            job.fal = Some(refs);
            job.queue_position = position;
            let create = JobCreate { job: job.clone(), ttl_ms: ctx.config.job_ttl_s * 1000 };
            ctx.timed("limiter", ctx.limiter.create_job(client, &create)).await?;
            keep_copy(ctx, &job);
            Ok(job)
        }
        Err(failure) => {
            complete(ctx, job, JobOutcome::Failed { error: failure.describe() }).await?;
            Err(ApiError::Upstream(failure))
        }
    }
}

/// Ends `job` with `outcome`, unless someone else already did.
pub async fn complete(ctx: &Ctx, job: Job, outcome: JobOutcome) -> ApiResult<Completion> {
    let client = client_of(&job)?;
    // Results: FAL's image is checked (and its copy to our bucket started) before the job counts as done.
    let (outcome, capture) = results::keep::check_job_outcome(ctx, outcome).await;
    let kept = results::keep::kept(&capture);
    let mut row = GenerationRow::of_job(&job, &outcome, ctx.now);
    (row.result_status, row.result_content_type, row.result_bytes, row.result_error) = (kept.status, kept.content_type, kept.bytes, kept.error);
    let recorded = ctx.timed("store", record(&ctx.db, &row)).await;
    // Results: the copy runs on after the answer, unless another caller recorded the job (theirs copies).
    results::keep::copy_after_answer(ctx, capture, &row, matches!(recorded, Ok(Recorded::New)));
    let recorded = recorded?;
    if recorded == Recorded::New {
        events::generation_recorded(ctx, &row);
    }
    let finish = JobFinish { id: job.id.clone(), outcome: outcome.clone(), now: ctx.now };
    let finished = ctx.timed("limiter", ctx.limiter.finish_job(&client, &finish)).await?;
    let (ended_now, current) = match finished.job {
        Some(state) => (finished.ended_now, state.job),
        // A job the object does not have (created before it kept jobs): the
        // D1 record decides, and KV holds its copy.
        None if recorded == Recorded::New => {
            let mut job = job;
            job.finish(&outcome, ctx.now);
            (true, job)
        }
        None => (false, ctx.jobs.get(&job.id).await?.unwrap_or(job)),
    };
    if !ended_now {
        return Ok(Completion::AlreadyEnded(current));
    }
    keep_copy(ctx, &current);
    if current.status != JobStatus::Canceled {
        events::job_finished(ctx, &current);
    }
    Ok(Completion::Ended(current))
}

/// Asks FAL how an unfinished job is doing — for a reader the client's
/// object chose (at most one per job every few seconds). A COMPLETED request
/// may still have failed: its result says.
pub async fn poll(ctx: &Ctx, job: Job) -> ApiResult<Job> {
    let Some(refs) = job.fal.clone() else { return Ok(job) };
    let status = match ctx.timed("fal", ctx.fal.queue_status(&refs)).await {
        Ok(s) => s,
        Err(e) => {
            worker::console_warn!("polling FAL for {} failed: {}", job.id, e.describe());
            return Ok(job);
        }
    };
    report(ctx, job, status).await
}

/// Applies what FAL says of the job's status: progress, or its end.
pub async fn report(ctx: &Ctx, job: Job, status: QueueStatus) -> ApiResult<Job> {
    let (next, position) = match status {
        QueueStatus::Completed => {
            let Some(refs) = job.fal.clone() else { return Ok(job) };
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
    let progress = JobProgress { id: job.id.clone(), status: next, queue_position: position, now: ctx.now };
    let state: Option<JobState> = ctx.timed("limiter", ctx.limiter.job_progress(&client_of(&job)?, &progress)).await?;
    Ok(state.map_or(job, |s| s.job))
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

/// A job read from KV because the client's object does not have it (it was
/// created before the object kept jobs, or the object lost its storage). A
/// copy still unfinished may be stale: D1's row says how it ended.
pub async fn from_copy(ctx: &Ctx, client: &ClientId, id: &str) -> ApiResult<Option<Job>> {
    let Some(mut job) = ctx.timed("store", ctx.jobs.get(id)).await? else { return Ok(None) };
    if job.client_id != client.as_str() || job.status.is_finished() {
        return Ok(Some(job));
    }
    if let Some(row) = crate::store::generations::get_for_job(&ctx.db, client, id).await? {
        job.finish(&row.outcome_of_job(), row.created_at + row.duration_ms);
    }
    Ok(Some(job))
}

/// Failures that say nothing about the request itself: try again later.
pub fn is_transient(f: &FalFailure) -> bool {
    matches!(f, FalFailure::Network { .. } | FalFailure::Timeout { .. } | FalFailure::Busy)
}

fn client_of(job: &Job) -> ApiResult<ClientId> {
    ClientId::parse(&job.client_id).ok_or_else(|| ApiError::Internal(format!("job {} has a bad client id", job.id)))
}

/// Writes the job's copy to KV after the response. KV refuses a second write
/// to a key within a second ("1 write per second" per key:
/// https://developers.cloudflare.com/kv/platform/limits), which a job that
/// ends quickly hits; so a refused write is tried again after the window.
/// Nothing waits for it: the client's object holds the state that counts.
fn keep_copy(ctx: &Ctx, job: &Job) {
    let (jobs, job, ttl_s, now) = (ctx.jobs.clone(), job.clone(), ctx.config.job_ttl_s, ctx.now);
    ctx.in_background(async move {
        for attempt in 0..3u64 {
            match jobs.put(&job, now, ttl_s).await {
                Ok(()) => return,
                Err(e) if attempt < 2 => {
                    worker::console_warn!("keeping job {} in KV (attempt {}): {e:?}", job.id, attempt + 1);
                    Delay::from(Duration::from_millis(1_100)).await;
                }
                Err(e) => worker::console_error!("job {} has no KV copy: {e:?}", job.id),
            }
        }
    });
}
