//! The synchronous try-on: one FAL call while the shopper waits, and the
//! attempt recorded before the answer goes back (so history shows it at once
//! and it is never lost).

use super::record::record_or_log;
use crate::domain::generation::{GenerationRequest, Outcome};
use crate::fal::models::{FalFailure, FalOutput};
use crate::state::Ctx;
use crate::store::generations::GenerationRow;
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
    let (status, image_url, error) = match &call.result {
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
    };
    ctx.timed("store", record_or_log(ctx, &row)).await;
    SyncGeneration { row, result: call.result }
}
