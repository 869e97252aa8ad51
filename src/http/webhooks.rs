//! `POST /api/webhooks/fal?job={id}`: FAL says a queued request ended. Nothing
//! in it is trusted before its signature is verified against FAL's JWKS, and
//! a delivery for a job that already ended changes nothing.

use super::{header, json, query_pairs, query_value, read_body, Ctx};
use crate::domain::job::{is_job_id, JobOutcome};
use crate::error::{ApiError, ApiResult};
use crate::fal::jwks;
use crate::fal::models::{error_reason, parse_output};
use crate::fal::webhook::{SignedDelivery, VerifyError};
use crate::jobs::{self, complete};
use crate::store;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Date, Request, Response};

const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
struct Delivery {
    request_id: String,
    status: String,
    #[serde(default)]
    payload: Value,
    error: Option<String>,
}

pub async fn fal(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let body = read_body(req, MAX_BODY_BYTES).await?;
    let signed = SignedDelivery::from_headers(|name| header(req, name)).map_err(refused)?;
    verify(ctx, &signed, &body).await?;

    let delivery: Delivery = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("the webhook body is not FAL's shape: {e}")))?;
    if delivery.request_id != signed.request_id {
        return Err(ApiError::bad_request("request_id_mismatch", "the body and the signature name different requests"));
    }
    let query = query_pairs(req)?;
    let job_id = query_value(&query, "job").filter(|id| is_job_id(id)).ok_or_else(|| ApiError::bad_request("invalid_query", "`job` is missing or malformed"))?;
    let Some(job) = store::jobs::get(&jobs::kv(ctx)?, job_id).await? else {
        // KV is eventually consistent: the job written moments ago may not be
        // visible here yet. FAL retries failed deliveries.
        return Err(ApiError::Unavailable { message: format!("job {job_id} is not visible yet; retry") });
    };
    if job.fal.as_ref().map(|f| f.request_id.as_str()) != Some(delivery.request_id.as_str()) {
        return Err(ApiError::bad_request("request_id_mismatch", "this webhook is for another job"));
    }
    if job.status.is_finished() {
        return json(200, &json!({ "received": true, "changed": false }));
    }
    let outcome = match delivery.status.as_str() {
        "OK" => match parse_output(&delivery.payload.to_string()) {
            Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
            Err(f) => JobOutcome::Failed { error: f.describe() },
        },
        _ => {
            let reason = error_reason(&delivery.payload.to_string());
            let reason = if reason == "no details" { delivery.error.unwrap_or(reason) } else { reason };
            JobOutcome::Failed { error: format!("FAL failed the request: {reason}") }
        }
    };
    let (_, changed) = complete(ctx, job, outcome).await?;
    json(200, &json!({ "received": true, "changed": changed }))
}

async fn verify(ctx: &Ctx, signed: &SignedDelivery, body: &[u8]) -> ApiResult<()> {
    // Real time, not a test clock: FAL stamps deliveries with its own clock.
    let now_ms = Date::now().as_millis();
    let unavailable = |message: String| ApiError::Unavailable { message: format!("cannot verify FAL webhooks: {message}") };
    let keys = jwks::keys(&ctx.config, now_ms, false).await.map_err(unavailable)?;
    match signed.verify(body, &keys, now_ms / 1000) {
        Err(VerifyError::SignatureMismatch) => {
            let fresh = jwks::keys(&ctx.config, now_ms, true).await.map_err(unavailable)?;
            signed.verify(body, &fresh, now_ms / 1000).map_err(refused)
        }
        other => other.map_err(refused),
    }
}

fn refused(e: VerifyError) -> ApiError {
    ApiError::unauthenticated("invalid_signature", format!("webhook refused: {}", e.describe()))
}
