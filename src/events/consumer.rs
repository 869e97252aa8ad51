//! The EVENTS queue's consumer: one message is one attempt at one delivery.
//! It reads the delivery and its client's current settings from the log,
//! attempts, records the attempt, and tells the queue what to do with the
//! message. Retries are the queue's own (a per-message delay); this code
//! never sleeps.

use super::attempt::{self, Attempted};
use super::schedule::{random_unit, Next, Schedule};
use super::verdict::{judge, Facts, QueueAction};
use super::{callbacks, metrics};
use crate::domain::callback::derive_secret;
use crate::domain::event::{DeliveryStatus, Destination, EventType};
use crate::error::ApiResult;
use crate::state::Services;
use crate::store::deliveries::{self, AttemptRecord, ForAttempt};
use crate::store::outbox::DeliveryMessage;
use worker::Date;

/// Handles one message of the events queue; `attempt` is the queue's count
/// for it (1 on first delivery).
pub async fn deliver(services: &Services, message: &DeliveryMessage, attempt: u32) -> QueueAction {
    match try_deliver(services, message, attempt).await {
        Ok(action) => action,
        Err(e) => {
            // The log could not be read or written (D1 unavailable): try
            // again on the same schedule, so an outage of ours costs no event.
            worker::console_error!("delivery {} (attempt {attempt}) could not be processed: {e:?}", message.id);
            match Schedule::new(&services.config.event_retry_delays_s).after_failure(attempt, random_unit()) {
                Next::RetryIn(delay_s) => QueueAction::Retry { delay_s },
                Next::GiveUp => QueueAction::DeadLetter,
            }
        }
    }
}

async fn try_deliver(services: &Services, message: &DeliveryMessage, attempt: u32) -> ApiResult<QueueAction> {
    let db = &services.db;
    let config = &services.config;
    let Some(found) = deliveries::for_attempt(db, &message.id).await? else {
        return Ok(QueueAction::Ack); // purged from the log: nothing left to deliver
    };
    let d = &found.delivery;
    if d.run != message.run || !d.status().is_some_and(DeliveryStatus::is_in_flight) {
        // Superseded by a redelivery, or a duplicate of a message whose run has ended.
        return Ok(QueueAction::Ack);
    }
    let destination = EventType::parse(&d.event_type).map_or(Destination::Callback, EventType::destination);
    let now = Date::now().as_millis();
    let (target, headers) = match receiver(services, &found, destination, now) {
        Ok(receiver) => receiver,
        Err((status, reason)) => {
            deliveries::settle_without_attempt(db, &d.id, d.run, status, &reason, now).await?;
            return Ok(QueueAction::Ack);
        }
    };
    let attempted: Attempted = attempt::post(&target, &headers, &d.payload).await;
    let finished = Date::now().as_millis();
    let schedule = Schedule::new(&config.event_retry_delays_s);
    let verdict = judge(&Facts {
        destination,
        attempt,
        succeeded: attempted.succeeded(),
        now: finished,
        failing_since: found.client.callbacks_failing_since,
        pause_after_ms: config.callback_pause_after_ms,
        schedule: &schedule,
        unit: random_unit(),
    });
    if let Some(error) = &attempted.error {
        worker::console_warn!("delivery {} attempt {attempt}: {error}; now {}", d.id, verdict.status.as_str());
    }
    let record = AttemptRecord {
        delivery_id: &d.id,
        client_id: &d.client_id,
        run: d.run,
        target: &target,
        status_code: attempted.status_code,
        error: attempted.error.as_deref(),
        latency_ms: attempted.latency_ms,
        attempted_at: finished,
        status: verdict.status,
        next_attempt_at: verdict.next_attempt_at,
        health: verdict.health,
    };
    if let Err(e) = deliveries::record_attempt(db, &record).await {
        // The attempt happened; only its log line is lost. The message still
        // follows the verdict, so a delivered event is not sent again.
        worker::console_error!("delivery {} attempt {attempt} was not logged: {e:?}", d.id);
    }
    Ok(verdict.queue)
}

/// Where and how to send this delivery now, or why it cannot be attempted
/// (the status it ends in, and the reason the log shows).
fn receiver(
    services: &Services,
    found: &ForAttempt,
    destination: Destination,
    now: u64,
) -> Result<(String, Vec<(String, String)>), (DeliveryStatus, String)> {
    let config = &services.config;
    let d = &found.delivery;
    let (url, headers) = match destination {
        Destination::Callback => {
            if found.client.callbacks_paused_at.is_some() {
                return Err((DeliveryStatus::Paused, "the client's callbacks are paused".into()));
            }
            let Some(url) = found.client.webhook_url.clone() else {
                return Err((DeliveryStatus::Failed, "the client has no callback URL".into()));
            };
            let Some(master) = &config.webhook_signing_key else {
                return Err((DeliveryStatus::Failed, "callbacks are not configured (WEBHOOK_SIGNING_KEY is not set)".into()));
            };
            let secret = derive_secret(master.expose().as_bytes(), &d.client_id, found.client.webhook_secret_version.unwrap_or(0));
            (url, callbacks::signed_headers(&secret, &d.event_id, now / 1000, &d.payload))
        }
        Destination::Metrics => {
            let Some(url) = config.metrics_endpoint.clone() else {
                return Err((DeliveryStatus::Failed, "metrics forwarding is off (METRICS_ENDPOINT is not set)".into()));
            };
            (url, metrics::headers(config.metrics_token.as_ref().map(|t| t.expose())))
        }
    };
    attempt::check_target(&url, config.image_policy.allow_loopback_http).map_err(|reason| (DeliveryStatus::Failed, reason))?;
    Ok((url, headers))
}

/// Handles one message of the dead-letter queue: the queue gave up on the
/// run, so its delivery is failed (unless it was delivered after all).
pub async fn dead_lettered(services: &Services, message: &DeliveryMessage) -> QueueAction {
    match deliveries::dead_lettered(&services.db, &message.id, message.run, Date::now().as_millis()).await {
        Ok(()) => {
            worker::console_warn!("delivery {} (run {}) reached the dead-letter queue", message.id, message.run);
            QueueAction::Ack
        }
        Err(e) => {
            worker::console_error!("dead-lettered delivery {} could not be marked: {e:?}", message.id);
            QueueAction::Retry { delay_s: 60 }
        }
    }
}
