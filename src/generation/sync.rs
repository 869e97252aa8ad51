//! The synchronous try-on: one FAL call while the shopper waits, and the
//! attempt recorded before the answer goes back (so history shows it at once
//! and it is never lost).

use super::record::record_or_log;
use crate::domain::generation::{GenerationRequest, Outcome};
use crate::fal::models::{FalFailure, FalOutput};
use crate::results;
use crate::state::Ctx;
use crate::store::generations::{GenerationRow, Recorded};
use std::sync::atomic::{AtomicBool, Ordering};
use worker::Date;

pub const ENDPOINT: &str = "/api/images/generate";

/// True until this isolate has served its first generation.
static COLD: AtomicBool = AtomicBool::new(true);

fn take_cold_start() -> bool {
    COLD.swap(false, Ordering::Relaxed)
}

pub struct SyncGeneration {
    pub row: GenerationRow,
    pub result: Result<FalOutput, FalFailure>,
}

/// Calls FAL for `request` and records the attempt under `generation_id`.
/// `started` is when the request arrived (for the total duration).
pub async fn run(ctx: &Ctx, client_id: &str, generation_id: String, request: &GenerationRequest, started: u64) -> SyncGeneration {
    let call = ctx.timed("fal", ctx.fal.run_sync(request)).await;
    // Results: FAL's image is checked (and its copy to our bucket started) before the attempt counts as a success.
    let (result, capture) = results::keep::check_output(ctx, call.result).await;
    let kept = results::keep::kept(&capture);
    let (status, image_url, error) = match &result {
        Ok(output) => (Outcome::Success, Some(output.image.url.clone()), None),
        Err(failure) => (Outcome::Error, None, Some(failure.describe())),
    };
    let row = GenerationRow {
        id: generation_id,
        client_id: client_id.to_string(),
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
        shopper_id: request.shopper_id.as_ref().map(|s| s.as_str().to_string()),
        metadata: request.metadata.to_column(),
        result_status: kept.status,
        result_content_type: kept.content_type,
        result_bytes: kept.bytes,
        result_error: kept.error,
    };
    let recorded = ctx.timed("store", record_or_log(ctx, &row)).await;
    // Results: the copy runs on after the answer (unrecorded rows too: the URL works without the row).
    results::keep::copy_after_answer(ctx, capture, &row, recorded != Some(Recorded::AlreadyRecorded));
    SyncGeneration { row, result }
}
