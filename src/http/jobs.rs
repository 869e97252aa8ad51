//! `POST /api/jobs`, `GET /api/jobs/{id}`, `DELETE /api/jobs/{id}`: try-on
//! without holding a connection open while FAL works.

use super::{idempotency, json, json_text, read_json_body, Ctx};
use crate::auth::{admit, authenticate, presented_key, Admit};
use crate::domain::generation::GenerationRequest;
use crate::domain::ids::new_id;
use crate::domain::job::{is_job_id, Job, JobOutcome, JobStatus};
use crate::error::{ApiError, ApiResult};
use crate::fal::client::{cancel as fal_cancel, queue_result, submit};
use crate::fal::models::fal_input;
use crate::jobs::{self, complete, is_transient, poll, view};
use crate::limiter::policy::ReserveRequest;
use crate::store;
use futures_util::future::join;
use worker::{Request, Response};

/// A job holds its quota unit and concurrency slot at most this long; if it
/// has not finished by then, the limiter settles it from D1 (a success that
/// arrives later is still charged, once).
const JOB_RESERVATION_MS: u64 = 15 * 60 * 1000;

pub async fn create(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let key = presented_key(req)?;
    let body = read_json_body(req, ctx.config.max_body_bytes).await?;
    let request = GenerationRequest::from_json(&body, &ctx.config.image_policy)?;
    let claim = idempotency::claim(req, &body)?;

    let job_id = new_id("job");
    let reservation = ReserveRequest { id: job_id.clone(), ttl_ms: JOB_RESERVATION_MS.min(ctx.config.job_ttl_s * 1000) };
    let client = match admit(req, ctx, &key, Some(reservation), claim.clone()).await? {
        Admit::Client(client) => client,
        Admit::Replay(stored) => return idempotency::replay(stored),
    };

    let base = match &ctx.config.public_base_url {
        Some(base) => base.clone(),
        None => req.url()?.origin().ascii_serialization(),
    };
    let webhook_url = format!("{base}/api/webhooks/fal?job={job_id}");
    let endpoint = ctx.config.models.endpoint(request.model);
    let submitted = ctx.timed("fal", submit(&ctx.config, endpoint, &fal_input(&request), &webhook_url)).await;

    let mut job = Job {
        id: job_id.clone(),
        status: JobStatus::Queued,
        created_at: ctx.now,
        fal_start: Some(ctx.now),
        fal_end: None,
        completed_at: None,
        image_url: None,
        error: None,
        client_id: client.id.to_string(),
        garments_count: request.garments.len() as u64,
        model: request.model.as_str().to_string(),
        description: None,
        queue_position: None,
        fal: None,
    };
    let location = format!("/api/jobs/{job_id}");
    let result = match submitted {
        Ok(refs) => {
            job.fal = Some(refs);
            ctx.timed("store", store::jobs::put(&jobs::kv(ctx)?, &job, ctx.now, ctx.config.job_ttl_s)).await?;
            Ok((202, view(&job).to_string(), Some(location.clone())))
        }
        // FAL refused the submission: the job ends now, recorded as an error.
        Err(failure) => {
            complete(ctx, job, JobOutcome::Failed { error: failure.describe() }).await?;
            Err(ApiError::Upstream(failure))
        }
    };
    idempotency::finish(ctx, &client.id, None, idempotency::completion(claim.as_ref(), &result)).await;
    let (status, body, _) = result?;
    let mut response = json_text(status, body)?;
    response.headers_mut().set("location", &location)?;
    Ok(response)
}

pub async fn show(req: &mut Request, ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let job = owned_job(req, ctx, id).await?;
    let job = if job.should_poll(ctx.now, ctx.config.job_poll_after_ms) { poll(ctx, job).await? } else { job };
    json(200, &view(&job))
}

/// Cancels at FAL and ends the job as `canceled`, which costs no quota. A
/// job that already finished (or finishes first at FAL) cannot be canceled.
pub async fn cancel(req: &mut Request, ctx: &Ctx, id: &str) -> ApiResult<Response> {
    let job = owned_job(req, ctx, id).await?;
    let finished = |job: &Job| {
        ApiError::conflict("job_finished", format!("the job already ended with status `{}`", job.status.as_str()))
    };
    if job.status.is_finished() {
        return Err(finished(&job));
    }
    let Some(refs) = job.fal.clone() else {
        return Err(ApiError::Internal(format!("job {} has no FAL request", job.id)));
    };
    if ctx.timed("fal", fal_cancel(&ctx.config, &refs)).await? {
        let (job, canceled_now) = complete(ctx, job, JobOutcome::Canceled).await?;
        return if canceled_now { json(200, &view(&job)) } else { Err(finished(&job)) };
    }
    // FAL had already finished it: record how, then refuse.
    let outcome = match queue_result(&ctx.config, &refs).await {
        Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
        Err(f) if is_transient(&f) => return Err(ApiError::Upstream(f)),
        Err(f) => JobOutcome::Failed { error: f.describe() },
    };
    let (job, _) = complete(ctx, job, outcome).await?;
    Err(finished(&job))
}

/// The job, if it exists and belongs to the caller: another client's job is
/// a 404, exactly like a job that does not exist.
async fn owned_job(req: &Request, ctx: &Ctx, id: &str) -> ApiResult<Job> {
    let key = presented_key(req)?;
    let not_found = || ApiError::not_found("no such job");
    if !is_job_id(id) {
        return Err(not_found());
    }
    let kv = jobs::kv(ctx)?;
    // The key check and the read run side by side: one round trip of latency.
    let (client, job) = join(authenticate(req, ctx, &key), ctx.timed("store", store::jobs::get(&kv, id))).await;
    let client = client?;
    job?.filter(|j| j.client_id == client.id.as_str()).ok_or_else(not_found)
}
