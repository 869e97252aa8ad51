//! Messages between the worker and the limiter object (JSON over the stub's fetch).

use super::policy::{ClientSnapshot, Settlement, StoredResponse};
use serde::{Deserialize, Serialize};

/// Ends a reservation, completes an idempotency key, or both, in one call.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SettleRequest {
    pub reservation: Option<(String, Settlement)>,
    pub idempotency: Option<IdempotencyCompletion>,
    pub now: u64,
}

/// `response: None` forgets the key (the request failed on our side or
/// upstream), so a retry with the same key runs again.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdempotencyCompletion {
    pub key: String,
    pub response: Option<StoredResponse>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SyncRequest {
    pub snapshot: ClientSnapshot,
}

/// Admin login throttling: ask whether a login may be tried, or record a failure.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub now: u64,
    pub window_ms: u64,
    pub max_failures: usize,
    pub record_failure: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginReply {
    pub allowed: bool,
    pub retry_after_s: u64,
}
