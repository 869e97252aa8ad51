//! `POST /api/webhooks/fal?job={id}`: FAL says a queued request ended. Nothing
//! in it is trusted before its signature is verified against FAL's JWKS (by
//! dispatch, through `verified`), and a delivery for a job that already
//! ended changes nothing.

use super::respond::json;
use crate::domain::ids::ClientId;
use crate::domain::job::{is_job_id, Job};
use crate::error::{ApiError, ApiResult};
use crate::fal::jwks;
use crate::fal::webhook::{parse_report, SignedDelivery, VerifyError};
use crate::generation::jobs::{complete, from_copy, Completion};
use crate::request::{header, query_pairs, query_value, read_body};
use crate::state::Ctx;
use serde_json::json;
use worker::{Date, Request, Response};

const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// A webhook body whose signature checked out.
pub struct VerifiedDelivery {
    signed: SignedDelivery,
    body: Vec<u8>,
}

/// Reads the body and verifies FAL's signature over it: the access check of
/// the webhook route.
pub async fn verified(req: &mut Request, ctx: &Ctx) -> ApiResult<VerifiedDelivery> {
    let body = read_body(req, MAX_BODY_BYTES).await?;
    let signed = SignedDelivery::from_headers(|name| header(req, name)).map_err(refused)?;
    // Real time, not a test clock: FAL stamps deliveries with its own clock.
    // The age of the cached keys is our own affair, on the request's clock
    // (the same in production), so that a test can let the hour pass.
    let now_ms = Date::now().as_millis();
    let unavailable = |message: String| ApiError::Unavailable { message: format!("cannot verify FAL webhooks: {message}") };
    let keys = jwks::keys(ctx.fal.settings(), ctx.now, false).await.map_err(unavailable)?;
    match signed.verify(&body, &keys, now_ms / 1000) {
        Err(VerifyError::SignatureMismatch) => {
            let fresh = jwks::keys(ctx.fal.settings(), ctx.now, true).await.map_err(unavailable)?;
            signed.verify(&body, &fresh, now_ms / 1000).map_err(refused)?;
        }
        other => other.map_err(refused)?,
    }
    Ok(VerifiedDelivery { signed, body })
}

pub async fn fal(req: &Request, ctx: &Ctx, delivery: VerifiedDelivery) -> ApiResult<Response> {
    let report = parse_report(&delivery.body, ctx.fal.settings().result_urls).map_err(|message| ApiError::bad_request("malformed_json", message))?;
    if report.request_id != delivery.signed.request_id {
        return Err(ApiError::bad_request("request_id_mismatch", "the body and the signature name different requests"));
    }
    let query = query_pairs(req)?;
    let job_id = query_value(&query, "job").filter(|id| is_job_id(id)).ok_or_else(|| ApiError::bad_request("invalid_query", "`job` is missing or malformed"))?;
    let Some(job) = find(ctx, query_value(&query, "client"), job_id).await? else {
        // The job is kept (in its client's object) only once FAL has accepted
        // it, so a webhook for a request FAL finished at once can arrive
        // before that: 503, and FAL retries the delivery (polls cover it too).
        // Keeping the job before the submit would cost every job one more
        // object round trip, for a race only an instant model can cause.
        return Err(ApiError::Unavailable { message: format!("job {job_id} is not visible yet; retry") });
    };
    if job.fal.as_ref().map(|f| f.request_id.as_str()) != Some(report.request_id.as_str()) {
        return Err(ApiError::bad_request("request_id_mismatch", "this webhook is for another job"));
    }
    if job.status.is_finished() {
        return json(200, &json!({ "received": true, "changed": false }));
    }
    let changed = matches!(complete(ctx, job, report.outcome).await?, Completion::Ended(_));
    json(200, &json!({ "received": true, "changed": changed }))
}

/// The job, from its client's object (the webhook URL names the client), or
/// from KV for a job created before webhook URLs named their client.
async fn find(ctx: &Ctx, client: Option<&str>, job_id: &str) -> ApiResult<Option<Job>> {
    if let Some(client) = client {
        let client = ClientId::parse(client).ok_or_else(|| ApiError::bad_request("invalid_query", "`client` is malformed"))?;
        if let Some(state) = ctx.timed("limiter", ctx.limiter.job(&client, job_id)).await? {
            return Ok(Some(state.job));
        }
        return from_copy(ctx, &client, job_id).await;
    }
    ctx.timed("store", ctx.jobs.get(job_id)).await
}

fn refused(e: VerifyError) -> ApiError {
    ApiError::unauthenticated("invalid_signature", format!("webhook refused: {}", e.describe()))
}
