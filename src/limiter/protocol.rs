//! Messages between the worker and the limiter objects (JSON over the stub's
//! fetch). Old objects keep running for minutes after a deploy, so a change
//! here must stay readable by the previous version: add fields with serde
//! defaults, never rename or remove one in the same release.

use super::quota::Settlement;
use super::snapshot::ClientSnapshot;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdmitRequest {
    pub key_hash: String,
    pub origin: Option<String>,
    pub now: u64,
    /// Present for generation requests: reserve a unit of quota and a
    /// concurrency slot under this id, and take a rate token.
    pub reserve: Option<ReserveRequest>,
    /// Present when the request carries an `Idempotency-Key`.
    #[serde(default)]
    pub idempotency: Option<IdempotencyClaim>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReserveRequest {
    pub id: String,
    pub ttl_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IdempotencyClaim {
    pub key: String,
    /// SHA-256 of the method, path and body: the same key must come with the same request.
    pub fingerprint: String,
}

/// A response kept for replay under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    InvalidApiKey,
    ClientInactive,
    OriginNotAllowed,
    IdempotencyMismatch,
    IdempotencyInProgress,
    RateLimited { retry_after_s: u64 },
    QuotaExceeded { retry_after_s: u64 },
    TooManyConcurrent { retry_after_s: u64 },
}

/// The numbers behind the rate-limit headers and `GET /api/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitStatus {
    pub rate_limit_per_minute: u64,
    pub rate_burst: u64,
    pub rate_remaining: u64,
    /// Seconds until the bucket is full again.
    pub rate_reset_s: u64,
    pub month: String,
    pub quota_limit: u64,
    /// Successful generations this month.
    pub quota_used: u64,
    /// Generations of this month still in flight (reserved, not settled).
    pub quota_reserved: u64,
    pub quota_remaining: u64,
    /// The first instant of next month (ms).
    pub quota_reset_at: u64,
    pub in_flight: u64,
    pub max_concurrent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub client: ClientView,
    pub limits: LimitStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Admitted(Admission),
    /// The idempotency key was used before with this request: its response, again.
    Replay { response: StoredResponse, limits: Option<LimitStatus> },
    /// Refused; `limits` is present once the key was accepted, for the headers.
    Refused { refusal: Refusal, limits: Option<LimitStatus> },
}

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
