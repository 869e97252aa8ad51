//! Enqueueing an event once, when it happens: one delivery row per receiver
//! in the log (a callback only if the client has a URL and wants the type),
//! then one queue message per row. Runs after the response (`waitUntil`);
//! the queue's consumer does the delivering.

use crate::results::links;
use super::{callbacks, metrics};
use crate::domain::event::{DeliveryStatus, Destination, EventType};
use crate::domain::ids::new_id;
use crate::domain::job::Job;
use crate::error::ApiResult;
use crate::state::{Ctx, Services};
use crate::store::deliveries::{self, Inserted, NewDelivery};
use crate::store::generations::{GenerationRow, Outcome};
use crate::store::outbox::DeliveryMessage;
use crate::store::{batch, rows};
use std::rc::Rc;

/// An event about to be enqueued for one receiver.
#[derive(Debug, Clone)]
pub struct Planned {
    pub event: EventType,
    pub event_id: String,
    pub payload: String,
}

/// A job ended: `job.completed` or `job.failed` to the client's callback URL.
pub fn job_finished(ctx: &Ctx, job: &Job) {
    let Some(event) = callbacks::job_event(job) else { return };
    if ctx.config.webhook_signing_key.is_none() {
        return; // callbacks are off without a key to sign them
    }
    let happened_at = job.completed_at.unwrap_or(ctx.now);
    let planned = Planned { event, event_id: callbacks::event_id(&job.id), payload: callbacks::body(event, happened_at, job.view(&links::urls(ctx))) };
    in_background(ctx, job.client_id.clone(), vec![planned]);
}

/// A generation was recorded: the metrics event for every one, and
/// `generation.completed` to the client for a successful synchronous one
/// (a job's outcome is told by `job.completed` / `job.failed`; a failed
/// synchronous generation was answered to the caller as an error).
pub fn generation_recorded(ctx: &Ctx, row: &GenerationRow) {
    let mut planned = Vec::new();
    if ctx.config.metrics_endpoint.is_some() {
        planned.push(Planned {
            event: EventType::GenerationRecorded,
            event_id: row.id.clone(),
            payload: metrics::event(row).to_string(),
        });
    }
    let synchronous_success = row.job_id.is_none() && row.status == Outcome::Success;
    if synchronous_success && ctx.config.webhook_signing_key.is_some() {
        let event = EventType::GenerationCompleted;
        planned.push(Planned {
            event,
            event_id: callbacks::event_id(&row.id),
            payload: callbacks::body(event, ctx.now, row.public_view(&links::urls(ctx))),
        });
    }
    if !planned.is_empty() {
        in_background(ctx, row.client_id.clone(), planned);
    }
}

fn in_background(ctx: &Ctx, client_id: String, planned: Vec<Planned>) {
    let (services, now) = (ctx.services.clone(), ctx.now);
    ctx.in_background(async move {
        if let Err(e) = enqueue(&services, &client_id, &planned, now).await {
            // Like UNRECORDED generations: the events themselves, so they can be replayed.
            let events: Vec<(&str, &str)> = planned.iter().map(|p| (p.event.as_str(), p.payload.as_str())).collect();
            worker::console_error!("UNDELIVERED events of {client_id} ({e:?}): {events:?}");
        }
    });
}

/// Records the deliveries and enqueues one message for each that is
/// pending (a paused client's are logged, not sent). An event already
/// enqueued for a receiver is not enqueued again.
pub async fn enqueue(services: &Rc<Services>, client_id: &str, planned: &[Planned], now: u64) -> ApiResult<()> {
    let db = &services.db;
    let ids: Vec<String> = planned.iter().map(|_| new_id("dlv")).collect();
    let mut statements = Vec::with_capacity(planned.len());
    for (p, id) in planned.iter().zip(&ids) {
        let new = NewDelivery { id, client_id, event_type: p.event, event_id: &p.event_id, payload: &p.payload, now };
        statements.push(match p.event.destination() {
            Destination::Callback => deliveries::insert_callback(db, &new)?,
            Destination::Metrics => deliveries::insert_metrics(db, &new)?,
        });
    }
    let mut messages = Vec::new();
    for result in batch(db, statements).await? {
        for inserted in rows::<Inserted>(&result)? {
            if DeliveryStatus::parse(&inserted.status) == Some(DeliveryStatus::Pending) {
                messages.push(DeliveryMessage { id: inserted.id, run: inserted.run });
            }
        }
    }
    if let Err(e) = services.events.send(messages.clone()).await {
        let ids: Vec<String> = messages.into_iter().map(|m| m.id).collect();
        deliveries::mark_unqueued(db, &ids, &format!("could not be queued: {e:?}"), now).await?;
        return Err(e);
    }
    Ok(())
}
