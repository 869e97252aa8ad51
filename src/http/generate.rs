//! `POST /api/images/generate`: the synchronous try-on.
//!
//! Round trips: one to the client's limiter object before FAL (key, origin,
//! rate, quota and concurrency in one decision), then after FAL one D1 batch
//! (the generation row and its rollup, awaited so the attempt is never lost
//! and history reads see it at once) and one limiter call to settle the
//! reservation (in `waitUntil`: if it is lost, the limiter's alarm settles the
//! reservation from the D1 row).

use super::{json, read_json_body, Ctx};
use crate::auth::{admit, presented_key};
use crate::domain::generation::GenerationRequest;
use crate::domain::ids::{new_id, ClientId};
use crate::error::ApiResult;
use crate::fal::{client::run_sync, models::fal_input};
use crate::limiter::client::Limiter;
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

    let generation_id = new_id("gen");
    let reservation = ReserveRequest { id: generation_id.clone(), ttl_ms: ctx.config.fal_timeout_ms + 60_000 };
    let client = admit(req, ctx, &key, Some(reservation)).await?;

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
    settle_in_background(ctx, &client.id, &row.id, row.status);

    let output = call.result?;
    json(
        200,
        &json!({
            "generation_id": row.id,
            "image_url": output.image.url,
            "model": row.model,
            "duration_ms": row.duration_ms,
            "fal_duration_ms": call.duration_ms,
            "image": output.image,
            "description": output.description,
        }),
    )
}

/// Releases or commits the quota unit reserved for `id` without delaying the response.
pub fn settle_in_background(ctx: &Ctx, client: &ClientId, id: &str, status: Outcome) {
    let outcome = match status {
        Outcome::Success => Settlement::Success,
        Outcome::Error => Settlement::Released,
    };
    let (env, client, id) = (ctx.env.clone(), client.clone(), id.to_string());
    ctx.wait.wait_until(async move {
        let settled = match Limiter::new(&env) {
            Ok(limiter) => limiter.settle(&client, &id, outcome).await,
            Err(e) => Err(e),
        };
        if let Err(e) = settled {
            worker::console_warn!("settling {id} failed; the limiter's alarm will settle it: {e:?}");
        }
    });
}

/// Records the attempt, retrying a failed write. If D1 stays down, the shopper
/// still gets the image; the full row goes to the logs so it can be replayed.
pub async fn record_or_log(ctx: &Ctx, row: &GenerationRow) {
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
