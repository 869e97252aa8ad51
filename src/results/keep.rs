//! The two touch points of the generation lifecycle (`generation::sync::run`
//! and `generation::jobs::complete`): check FAL's output before the attempt
//! is recorded, then let the copy run on after the answer.

use super::capture::{capture, store_and_note, Capture, Kept};
use crate::domain::job::JobOutcome;
use crate::fal::models::{FalFailure, FalOutput};
use crate::state::Ctx;
use crate::store::generations::GenerationRow;

/// A successful output whose file is not an acceptable image becomes a
/// failure (`upstream_malformed_response`, not charged); otherwise the
/// output stands, with the capture to record and finish.
pub async fn check_output(ctx: &Ctx, result: Result<FalOutput, FalFailure>) -> (Result<FalOutput, FalFailure>, Option<Capture>) {
    let Ok(output) = result else { return (result, None) };
    match ctx.timed("result", capture(&output.image.url, ctx.config.max_result_bytes)).await {
        Capture::Refused(refusal) => (Err(FalFailure::UnusableOutput { reason: refusal.describe() }), None),
        other => (Ok(output), Some(other)),
    }
}

/// The same for a job: a `Done` whose file is refused ends the job `error`.
pub async fn check_job_outcome(ctx: &Ctx, outcome: JobOutcome) -> (JobOutcome, Option<Capture>) {
    let JobOutcome::Done { image_url, .. } = &outcome else { return (outcome, None) };
    match ctx.timed("result", capture(image_url, ctx.config.max_result_bytes)).await {
        Capture::Refused(refusal) => (JobOutcome::Failed { error: FalFailure::UnusableOutput { reason: refusal.describe() }.describe() }, None),
        other => (outcome, Some(other)),
    }
}

/// The row's result columns.
pub fn kept(capture: &Option<Capture>) -> Kept {
    capture.as_ref().map(Capture::kept).unwrap_or_default()
}

/// After the attempt is recorded: the copy finishes in the background.
/// `recorded_by_us` is false when another caller had already recorded this
/// generation (a job ended twice): theirs is the copy that counts.
pub fn copy_after_answer(ctx: &Ctx, capture: Option<Capture>, row: &GenerationRow, recorded_by_us: bool) {
    let copy = match capture {
        Some(Capture::Started(copy)) if recorded_by_us => copy,
        Some(other) => return other.abandon(),
        None => return,
    };
    let (services, client_id, generation_id) = (ctx.services.clone(), row.client_id.clone(), row.id.clone());
    ctx.in_background(async move {
        store_and_note(&services.db, &services.results, copy, &client_id, &generation_id).await;
    });
}
