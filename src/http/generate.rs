//! `POST /api/images/generate`: the synchronous try-on.
//!
//! Round trips: one to the client's limiter object before FAL (key, origin,
//! rate, quota and concurrency in one decision), then after FAL one D1 batch
//! (the generation row and its rollup, awaited so the attempt is never lost
//! and history reads see it at once) and one limiter call to settle the
//! reservation (in `waitUntil`: if it is lost, the limiter's alarm settles the
//! reservation from the D1 row).

use super::{idempotency, json_text, read_json_body, Ctx};
use crate::auth::{admit, presented_key, Admit};
use crate::domain::generation::GenerationRequest;
use crate::domain::ids::new_id;
use crate::error::{ApiError, ApiResult};
use crate::fal::{client::run_sync, models::fal_input};
use crate::limiter::policy::{ReserveRequest, Settlement};
use crate::store::generations::{record, GenerationRow, Outcome};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use worker::{Date, Request, Response};

pub const ENDPOINT: &str = "/api/images/generate";

/// True until this isolate has served its first generation.
static COLD: AtomicBool = AtomicBool::new(true);

pub fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

pub async fn generate(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let started = Date::now().as_millis();
    // Cheap checks first: a malformed key or body never reaches a binding.
    let key = presented_key(req)?;
    let body = read_json_body(req, ctx.config.max_body_bytes).await?;
    let request = GenerationRequest::from_json(&body, &ctx.config.image_policy)?;
    let claim = idempotency::claim(req, &body)?;

    let generation_id = new_id("gen");
    let reservation = ReserveRequest { id: generation_id.clone(), ttl_ms: ctx.config.fal_timeout_ms + 60_000 };
    let client = match admit(req, ctx, &key, Some(reservation), claim.clone()).await? {
        Admit::Client(client) => client,
        Admit::Replay(stored) => return idempotency::replay(stored),
    };

    let endpoint = ctx.config.models.endpoint(request.model);
    let call = ctx.timed("fal", run_sync(&ctx.config, endpoint, &fal_input(&request))).await;

    let (status, image_url, error) = match &call.result {
        Ok(output) => (Outcome::Success, Some(output.image.url.clone()), None),
        Err(failure) => (Outcome::Error, None, Some(failure.describe())),
    };
    let row = GenerationRow {
        id: generation_id,
        client_id: client.id.to_string(),
        model: request.model.as_str().to_string(),
        status,
        endpoint: ENDPOINT.to_string(),
        duration_ms: Date::now().as_millis().saturating_sub(started),
        fal_duration_ms: Some(call.duration_ms),
        image_url,
        error,
        garments_count: request.garments.len() as u64,
        cold_start: i64::from(take_cold_start()),
        job_id: None,
        created_at: ctx.now,
    };
    ctx.timed("store", record_or_log(ctx, &row)).await;

    let result = call.result.map_err(ApiError::from).map(|output| {
        let body = json!({
            "generation_id": row.id,
            "image_url": output.image.url,
            "model": row.model,
            "duration_ms": row.duration_ms,
            "fal_duration_ms": call.duration_ms,
            "image": output.image,
            "description": output.description,
        });
        (200, body.to_string(), None)
    });
    let settlement = (row.id.clone(), settlement_of(row.status));
    idempotency::finish(ctx, &client.id, Some(settlement), idempotency::completion(claim.as_ref(), &result)).await;
    let (status, body, _) = result?;
    json_text(status, body)
}

pub fn settlement_of(status: Outcome) -> Settlement {
    match status {
        Outcome::Success => Settlement::Success,
        Outcome::Error | Outcome::Canceled => Settlement::Released,
    }
}

/// Records the attempt, retrying a failed write, and forwards its event. If
/// D1 stays down, the shopper still gets the image; the full row goes to the
/// logs so it can be replayed.
pub async fn record_or_log(ctx: &Ctx, row: &GenerationRow) {
    crate::metrics::forward_in_background(ctx, row);
    for attempt in 0..3 {
        match record(&ctx.db, row).await {
            Ok(()) => return,
            // The previous attempt committed but its answer was lost.
            Err(e) if attempt > 0 && format!("{e:?}").contains("UNIQUE") => return,
            Err(e) => worker::console_warn!("recording generation {} failed (attempt {}): {:?}", row.id, attempt + 1, e),
        }
    }
    worker::console_error!("UNRECORDED generation: {}", serde_json::to_string(row).unwrap_or_default());
}
