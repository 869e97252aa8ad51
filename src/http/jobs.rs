//! `POST /api/jobs`, `GET /api/jobs/{id}`, `GET /api/jobs/{id}/events`,
//! `DELETE /api/jobs/{id}`: try-on without holding a connection open while
//! FAL works. The lifecycle itself lives in `generation::jobs`; the live
//! state, in the client's limiter object.

use super::idempotency;
use super::input::GenerationInput;
use super::respond::{json, json_text};
use crate::auth::ApiClient;
use crate::domain::job::{is_job_id, Job};
use crate::error::{ApiError, ApiResult};
use crate::generation::jobs::{self as lifecycle, Cancellation, JOB_RESERVATION_MS};
use crate::generation::{follow, settle};
use crate::limiter::jobs::JobState;
use crate::limiter::protocol::{JobRead, JobSubscribe, StoredResponse};
use crate::request::header;
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
    // The webhook names the client, so FAL's delivery finds the job's object
    // without a lookup; FAL's signature and the job's request id vouch for it.
    let webhook_url = format!("{base}/api/webhooks/fal?job={}&client={}", input.id, client.id);
    let location = format!("/api/jobs/{}", input.id);
    // Submitting and keeping the job complete even if the shopper goes away
    // meanwhile: FAL would run the job anyway, and its result must be kept.
    let (work, owner, job_id, claim) = (ctx.clone(), client.id.clone(), input.id.clone(), input.claim.clone());
    let reply = ctx
        .detached(async move {
            let reply = lifecycle::submit(&work, &owner, job_id, &input.request, &webhook_url)
                .await
                .map(|job| StoredResponse { status: 202, body: job.view(&links::urls(&work)).to_string(), location: Some(format!("/api/jobs/{}", job.id)) });
            // The reservation is settled when the job ends; only the key completes now.
            settle::finish(&work, &owner, None, idempotency::completion(claim.as_ref(), &reply)).await;
            reply
        })
        .await
        .ok_or_else(|| ApiError::Internal("the job submission was dropped".into()))??;
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

/// What the admission asks the client's object for: the job, and whether this
/// reader should ask FAL about it.
pub fn read(ctx: &Ctx, id: &str) -> JobRead {
    JobRead { id: id.to_string(), poll_after_ms: ctx.config.job_poll_after_ms }
}

fn not_found() -> ApiError {
    ApiError::not_found("no such job")
}

/// The job as the client's object has it, or from KV's copy for a job the
/// object does not have, if the caller may see it.
async fn current(ctx: &Ctx, client: &ApiClient, id: &str, state: Option<JobState>) -> ApiResult<Job> {
    let job = match state {
        Some(state) => {
            let job = visible_to(client, state.job)?;
            if state.poll { lifecycle::poll(ctx, job).await? } else { job }
        }
        None => {
            let job = lifecycle::from_copy(ctx, &client.id, id).await?.ok_or_else(not_found)?;
            if job.should_poll(ctx.now, ctx.config.job_poll_after_ms) {
                lifecycle::poll(ctx, job).await?
            } else {
                job
            }
        }
    };
    visible_to(client, job)
}

/// Another client's job, or (for a browser credential) another shopper's,
/// is a 404, exactly like a job that does not exist.
fn visible_to(client: &ApiClient, job: Job) -> ApiResult<Job> {
    let shopper_ok = client.shopper.as_ref().is_none_or(|s| job.shopper_id.as_deref() == Some(s.as_str()));
    if job.client_id != client.id.as_str() || !shopper_ok {
        return Err(not_found());
    }
    Ok(job)
}

pub async fn show(ctx: &Ctx, client: &ApiClient, id: &str, state: Option<JobState>) -> ApiResult<Response> {
    json(200, &current(ctx, client, id, state).await?.view(&links::urls(ctx)))
}

/// Cancels at FAL and ends the job as `canceled`, which costs no quota. A
/// job that already finished (or finishes first at FAL) cannot be canceled.
pub async fn cancel(ctx: &Ctx, client: &ApiClient, id: &str, state: Option<JobState>) -> ApiResult<Response> {
    let job = match state {
        Some(state) => visible_to(client, state.job)?,
        None => current(ctx, client, id, None).await?,
    };
    match lifecycle::cancel(ctx, job).await? {
        Cancellation::Canceled(job) => json(200, &job.view(&links::urls(ctx))),
        Cancellation::AlreadyFinished(job) => {
            Err(ApiError::conflict("job_finished", format!("the job already ended with status `{}`", job.status.as_str())))
        }
    }
}

/// `GET /api/jobs/{id}/events`: the job's status as Server-Sent Events, from
/// the client's object, which pushes every change. One reader at a time is
/// chosen to follow FAL's own status stream for everyone.
pub async fn events(req: &Request, ctx: &Ctx, client: &ApiClient, id: &str, state: Option<JobState>) -> ApiResult<Response> {
    let last_event_id = header(req, "last-event-id").and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(state) = &state {
        visible_to(client, state.job.clone())?;
    }
    if state.is_none() {
        // A job only KV knows (created before the object kept jobs): its
        // state now, as one event; the client then polls.
        let job = current(ctx, client, id, None).await?;
        return stream_response(Response::from_bytes(crate::domain::sse::event(1, job.status.as_str(), &job.view(&links::urls(ctx)).to_string()).into_bytes())?);
    }
    let subscribe = JobSubscribe { id: id.to_string(), last_event_id, now: ctx.now, max_ms: ctx.config.status_stream_max_ms, base: ctx.public_base() };
    let (stream, lead) = ctx.limiter.subscribe(&client.id, &subscribe).await?.ok_or_else(not_found)?;
    if let (true, Some(state)) = (lead, state) {
        follow::in_background(ctx, state.job, ctx.config.status_stream_max_ms);
    }
    let (_, body) = stream.into_parts();
    stream_response(Response::from_body(body)?)
}

fn stream_response(mut response: Response) -> ApiResult<Response> {
    let headers = response.headers_mut();
    headers.set("content-type", "text/event-stream; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    // Proxies that buffer would hold events back until the stream ends.
    headers.set("x-accel-buffering", "no")?;
    Ok(response)
}
