//! Messages between the worker and the limiter object (JSON over the stub's fetch).

use super::policy::{ClientSnapshot, Settlement};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct SettleRequest {
    pub id: String,
    pub outcome: Settlement,
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
