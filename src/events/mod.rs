//! Outbound events: telling the outside what happened. The client's back end
//! gets signed callbacks (`job.completed`, `job.failed`,
//! `generation.completed`, as it chose); the operators' metrics back end
//! gets every recorded generation. The generation lifecycle calls the two
//! functions below and never waits: each event is logged in D1 and enqueued
//! once (`enqueue`), and the EVENTS queue's consumer (`consumer`) delivers
//! it, retrying on the queue's own per-message delay (`schedule`, `verdict`)
//! until the dead-letter queue takes it. Admins redeliver (`redeliver`).

pub mod attempt;
pub mod callbacks;
pub mod consumer;
pub mod enqueue;
pub mod metrics;
pub mod redeliver;
pub mod schedule;
pub mod verdict;

use crate::domain::job::Job;
use crate::state::Ctx;
use crate::store::generations::GenerationRow;

/// A generation attempt was recorded (sync or job, success or not).
pub fn generation_recorded(ctx: &Ctx, row: &GenerationRow) {
    enqueue::generation_recorded(ctx, row);
}

/// A job ended (done or failed; cancels by the client are not reported).
pub fn job_finished(ctx: &Ctx, job: &Job) {
    enqueue::job_finished(ctx, job);
}
