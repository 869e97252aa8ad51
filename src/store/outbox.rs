//! The EVENTS queue as its producer sees it. A message only names a delivery
//! and its run; what to send (payload, receiver) is in the delivery log, so
//! messages stay far below the queue's 128 KB limit and a redelivery reuses
//! the logged event.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use worker::Queue;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    /// The delivery's id (`dlv_…`).
    pub id: String,
    /// Which run of the delivery this message drives (see `deliveries::begin_run`).
    pub run: u64,
}

pub struct EventQueue(Queue);

impl EventQueue {
    pub fn new(queue: Queue) -> Self {
        Self(queue)
    }

    /// Enqueues the messages in one call (the queue takes up to 100 at once;
    /// an event makes at most two).
    pub async fn send(&self, messages: Vec<DeliveryMessage>) -> ApiResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        self.0.send_batch(messages).await.map_err(|e| ApiError::Internal(format!("EVENTS queue: {e}")))
    }
}
