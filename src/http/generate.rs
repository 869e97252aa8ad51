//! `POST /api/images/generate`: the synchronous try-on.

use super::{json, read_json_body, Ctx};
use crate::auth::authenticate_client;
use crate::domain::generation::GenerationRequest;
use crate::domain::ids::new_id;
use crate::error::ApiResult;
use crate::fal::{client::run_sync, models::fal_input};
use crate::store::generations::{record, GenerationRow, Outcome};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use worker::{Date, Request, Response};

pub const ENDPOINT: &str = "/api/images/generate";

/// True until this isolate has served its first generation.
static COLD: AtomicBool = AtomicBool::new(true);

pub async fn generate(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let started = Date::now().as_millis();
    let client = authenticate_client(req, ctx).await?;
    let body = read_json_body(req, ctx.config.max_body_bytes).await?;
    let request = GenerationRequest::from_json(&body, &ctx.config.image_policy)?;

    let endpoint = ctx.config.models.endpoint(request.model);
    let call = run_sync(&ctx.config, endpoint, &fal_input(&request)).await;

    let mut row = GenerationRow {
        id: new_id("gen"),
        client_id: client.id.to_string(),
        model: request.model.as_str().to_string(),
        status: Outcome::Success,
        endpoint: ENDPOINT.to_string(),
        duration_ms: 0,
        fal_duration_ms: Some(call.duration_ms),
        image_url: None,
        error: None,
        garments_count: request.garments.len() as u64,
        cold_start: i64::from(COLD.swap(false, Ordering::Relaxed)),
        job_id: None,
        created_at: ctx.now,
    };
    match &call.result {
        Ok(output) => row.image_url = Some(output.image.url.clone()),
        Err(failure) => {
            row.status = Outcome::Error;
            row.error = Some(failure.describe());
        }
    }
    row.duration_ms = Date::now().as_millis().saturating_sub(started);
    record_with_retry(ctx, &row).await?;

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

/// A generation is never left unrecorded because of one failed write.
pub async fn record_with_retry(ctx: &Ctx, row: &GenerationRow) -> ApiResult<()> {
    let mut attempt = 0;
    loop {
        match record(&ctx.db, row).await {
            Ok(()) => return Ok(()),
            // The previous attempt committed but its answer was lost.
            Err(e) if attempt > 0 && format!("{e:?}").contains("UNIQUE") => return Ok(()),
            Err(e) if attempt < 2 => {
                worker::console_warn!("recording generation {} failed, retrying: {:?}", row.id, e);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
