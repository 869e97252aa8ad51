//! An admin's redelivery: a new run of a logged delivery, with the same body
//! and webhook-id and a fresh retry schedule.

use crate::domain::event::Destination;
use crate::error::{ApiError, ApiResult};
use crate::state::Services;
use crate::store::deliveries::{self, ListedDelivery};
use crate::store::outbox::DeliveryMessage;

/// Starts the new run and enqueues it; returns the delivery as it now is.
/// A run still under way is superseded: its next message finds a newer run
/// and stops, so the receiver is not called twice for one click.
pub async fn redeliver(services: &Services, id: &str, now: u64) -> ApiResult<ListedDelivery> {
    let db = &services.db;
    let found = deliveries::for_attempt(db, id).await?.ok_or_else(|| ApiError::not_found("no such delivery"))?;
    if found.delivery.destination == Destination::Callback.as_str() {
        if found.client.callbacks_paused_at.is_some() {
            return Err(ApiError::conflict(
                "callbacks_paused",
                "the client's callbacks are paused; resume them first (POST /admin/clients/{id}/callbacks/resume)",
            ));
        }
        if found.client.webhook_url.is_none() {
            return Err(ApiError::conflict("no_callback_url", "the client has no callback URL to deliver to"));
        }
    }
    let run = deliveries::begin_run(db, id, now).await?.ok_or_else(|| ApiError::not_found("no such delivery"))?;
    if let Err(e) = services.events.send(vec![DeliveryMessage { id: id.to_string(), run }]).await {
        deliveries::mark_unqueued(db, &[id.to_string()], &format!("could not be queued: {e:?}"), now).await?;
        return Err(ApiError::Unavailable { message: "the events queue did not accept the redelivery; try again".into() });
    }
    deliveries::get(db, id).await?.ok_or_else(|| ApiError::not_found("no such delivery"))
}
