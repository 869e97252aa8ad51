//! `POST /api/jobs`, `GET /api/jobs/{id}`, `DELETE /api/jobs/{id}`: try-on
//! without holding a connection open while FAL works. The lifecycle itself
//! lives in `generation::jobs`.

use super::idempotency;
use super::input::GenerationInput;
use super::respond::{json, json_text};
use crate::auth::ApiClient;
use crate::domain::job::{is_job_id, Job};
use crate::error::{ApiError, ApiResult};
use crate::generation::jobs::{self as lifecycle, Cancellation, JOB_RESERVATION_MS};
use crate::generation::settle;
use crate::limiter::protocol::StoredResponse;
use crate::results::links;
use crate::state::Ctx;
use worker::{Request, Response};

pub fn reservation_ttl_ms(ctx: &Ctx) -> u64 {
    JOB_RESERVATION_MS.min(ctx.config.job_ttl_s * 1000)
}

pub async fn create(req: &Request, ctx: &Ctx, client: &ApiClient, input: GenerationInput) -> ApiResult<Response> {
    let base = match &ctx.config.public_base_url {
        Some(base) => base.clone(),
        None => req.url()?.origin().ascii_serialization(),
    };
    let webhook_url = format!("{base}/api/webhooks/fal?job={}", input.id);
    let location = format!("/api/jobs/{}", input.id);
    let reply = lifecycle::submit(ctx, &client.id, input.id.clone(), &input.request, &webhook_url)
        .await
        .map(|job| StoredResponse { status: 202, body: job.view(&links::urls(ctx)).to_string(), location: Some(location.clone()) });
    // The reservation is settled when the job ends; only the key completes now.
    settle::finish(ctx, &client.id, None, idempotency::completion(input.claim.as_ref(), &reply)).await;
    let reply = reply?;
    let mut response = json_text(reply.status, reply.body)?;
    response.headers_mut().set("location", &location)?;
    Ok(response)
}

/// Job ids are checked before anything is read: a malformed one is simply unknown.
pub fn checked_id(id: &str) -> ApiResult<&str> {
    if is_job_id(id) {
        Ok(id)
    } else {
        Err(not_found())
    }
}

/// Another client's job is a 404, exactly like a job that does not exist.
pub fn owned(client: &ApiClient, job: Option<Job>) -> ApiResult<Job> {
    job.filter(|j| j.client_id == client.id.as_str()).ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::not_found("no such job")
}

pub async fn show(ctx: &Ctx, client: &ApiClient, job: Option<Job>) -> ApiResult<Response> {
    let job = owned(client, job)?;
    let job = if job.should_poll(ctx.now, ctx.config.job_poll_after_ms) { lifecycle::poll(ctx, job).await? } else { job };
    json(200, &job.view(&links::urls(ctx)))
}

/// Cancels at FAL and ends the job as `canceled`, which costs no quota. A
/// job that already finished (or finishes first at FAL) cannot be canceled.
pub async fn cancel(ctx: &Ctx, client: &ApiClient, job: Option<Job>) -> ApiResult<Response> {
    match lifecycle::cancel(ctx, owned(client, job)?).await? {
        Cancellation::Canceled(job) => json(200, &job.view(&links::urls(ctx))),
        Cancellation::AlreadyFinished(job) => {
            Err(ApiError::conflict("job_finished", format!("the job already ended with status `{}`", job.status.as_str())))
        }
    }
}
