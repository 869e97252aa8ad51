//! What happened, told to whoever listens outside: the client's back end
//! (signed callbacks when its jobs finish) and the operators' metrics back
//! end (every recorded generation). The generation lifecycle calls these;
//! they never call back into it. Delivery runs after the response.

pub mod callbacks;
pub mod metrics;

use crate::domain::job::Job;
use crate::state::Ctx;
use crate::store::generations::GenerationRow;

/// A generation attempt was recorded (sync or job, success or not).
pub fn generation_recorded(ctx: &Ctx, row: &GenerationRow) {
    metrics::forward_in_background(ctx, row);
}

/// A job ended (done or failed; cancels by the client are not reported).
pub fn job_finished(ctx: &Ctx, job: &Job) {
    callbacks::notify_in_background(ctx, job);
}
