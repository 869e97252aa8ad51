//! Following FAL's status stream for a job, on behalf of every reader of the
//! job's own status stream: one follower per job at a time (the client's
//! object chooses it), whose reports the object pushes to all readers. When
//! FAL's stream drops before the end, the follower falls back to polling
//! FAL's status URL, at the object's poll interval, until a time bound.

use super::jobs::{poll, report};
use crate::domain::job::Job;
use crate::domain::sse::SseReader;
use crate::fal::models::parse_queue_status;
use crate::limiter::jobs::POLL_INTERVAL_MS;
use crate::state::Ctx;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::time::Duration;
use worker::{Date, Delay};

/// FAL sends a keep-alive comment every 15 s; silence for longer means the
/// stream is gone even if the connection is not.
const SILENCE_MS: u64 = 30_000;

pub fn in_background(ctx: &Ctx, job: Job, max_ms: u64) {
    let (follower, started) = (ctx.clone(), Date::now().as_millis());
    ctx.in_background(async move {
        let job = follow_stream(&follower, job, started, started + max_ms).await;
        poll_until(&follower, job, started, started + max_ms).await;
    });
}

/// Reports each status FAL's stream sends until the job ends, the stream
/// ends or falls silent, or `deadline`. Returns the job as it stands.
async fn follow_stream(ctx: &Ctx, mut job: Job, started: u64, deadline: u64) -> Job {
    let Some(refs) = job.fal.clone() else { return job };
    let mut response = match ctx.fal.status_stream(&refs).await {
        Ok(r) => r,
        Err(e) => {
            worker::console_warn!("FAL's status stream for {}: {}", job.id, e.describe());
            return job;
        }
    };
    let Ok(mut chunks) = response.stream() else { return job };
    let mut reader = SseReader::default();
    while !job.status.is_finished() {
        let wait = deadline.saturating_sub(Date::now().as_millis()).min(SILENCE_MS);
        if wait == 0 {
            break;
        }
        let chunk = match select(chunks.next(), Delay::from(Duration::from_millis(wait))).await {
            Either::Left((Some(Ok(bytes)), _)) => bytes,
            _ => break, // ended, failed, or silent
        };
        let events = match reader.push(&String::from_utf8_lossy(&chunk)) {
            Ok(events) => events,
            Err(e) => {
                worker::console_warn!("FAL's status stream for {}: {e}", job.id);
                break;
            }
        };
        for event in events {
            let Ok(status) = parse_queue_status(&event.data) else { continue };
            match report(&ctx.later(started), job.clone(), status).await {
                Ok(next) => job = next,
                Err(e) => worker::console_warn!("reporting {}'s status: {e:?}", job.id),
            }
        }
    }
    job
}

/// Polls FAL until the job ends or `deadline`.
async fn poll_until(ctx: &Ctx, mut job: Job, started: u64, deadline: u64) {
    while !job.status.is_finished() && Date::now().as_millis() + POLL_INTERVAL_MS < deadline {
        Delay::from(Duration::from_millis(POLL_INTERVAL_MS)).await;
        match poll(&ctx.later(started), job.clone()).await {
            Ok(next) => job = next,
            Err(e) => worker::console_warn!("polling {}: {e:?}", job.id),
        }
    }
}
