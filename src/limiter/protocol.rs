//! Messages between the worker and the limiter objects (JSON over the stub's
//! fetch). Old objects keep running for minutes after a deploy, so a change
//! here must stay readable by the previous version: add fields with serde
//! defaults, never rename or remove one in the same release.

use super::jobs::JobState;
use super::quota::{ReservationMeta, Settlement};
pub use super::snapshot::Credential;
use super::snapshot::ClientSnapshot;
use crate::domain::job::{Job, JobOutcome, JobStatus};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AdmitRequest {
    /// SHA-256 of the key (empty for a widget token).
    pub key_hash: String,
    #[serde(default)]
    pub credential: Credential,
    /// The shopper a browser credential acts for: their generations count
    /// against the widget's and the shopper's own limits.
    #[serde(default)]
    pub shopper_id: Option<String>,
    pub origin: Option<String>,
    pub now: u64,
    /// Present for generation requests: reserve a unit of quota and a
    /// concurrency slot under this id, and take a rate token.
    pub reserve: Option<ReserveRequest>,
    /// Present when the request carries an `Idempotency-Key`.
    #[serde(default)]
    pub idempotency: Option<IdempotencyClaim>,
    /// Present when the request reads one of the client's jobs: the job
    /// comes back with the admission, in the same round trip.
    #[serde(default)]
    pub job: Option<JobRead>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReserveRequest {
    pub id: String,
    pub ttl_ms: u64,
    /// What the attempt is, so that one whose request died can still be recorded.
    #[serde(default)]
    pub meta: Option<ReservationMeta>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JobRead {
    pub id: String,
    /// After this long without a webhook, a reader may be chosen to ask FAL.
    pub poll_after_ms: u64,
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
    OriginRequired,
    WidgetRateLimited { retry_after_s: u64 },
    ShopperRateLimited { retry_after_s: u64 },
    ShopperDailyLimit { retry_after_s: u64 },
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
    /// The job asked for with `AdmitRequest::job`, if the client has it.
    #[serde(default)]
    pub job: Option<JobState>,
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

/// A job FAL accepted: the object keeps it until `ttl_ms` after its creation.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobCreate {
    pub job: Job,
    pub ttl_ms: u64,
}

/// What FAL says about a running job.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobProgress {
    pub id: String,
    pub status: JobStatus,
    pub queue_position: Option<u64>,
    pub now: u64,
}

/// How a job ended; also settles its reservation (charged once).
#[derive(Debug, Serialize, Deserialize)]
pub struct JobFinish {
    pub id: String,
    pub outcome: JobOutcome,
    pub now: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JobFinished {
    /// The job as it now stands, if the object has it.
    pub job: Option<JobState>,
    /// Whether this call ended it (only that caller tells the client's back end).
    pub ended_now: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JobGet {
    pub id: String,
}

/// Opens a status stream: events newer than `last_event_id`, until the job
/// ends or `max_ms` passes.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobSubscribe {
    pub id: String,
    pub last_event_id: Option<u64>,
    pub now: u64,
    pub max_ms: u64,
    /// Our public origin, for the result links in the events.
    #[serde(default)]
    pub base: String,
}

/// Forget a shopper (the right to erasure): their live jobs and counters.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShopperErase {
    pub shopper_id: String,
}

/// The response header by which `subscribe` tells the caller to follow FAL's
/// status stream for the job (everyone else only listens).
pub const FOLLOW_HEADER: &str = "x-follow-fal";

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

#[cfg(test)]
mod tests {
    //! Messages exactly as the previous releases' workers and objects sent
    //! them (their shapes from `git log -p -- src/limiter/protocol.rs`): each
    //! must still decode, its missing fields taking their defaults.
    use super::*;
    use serde_json::json;

    #[test]
    fn a_previous_workers_job_subscription_without_base_still_decodes() {
        // Before result images (558b6a3) a subscription named no public origin.
        let old = json!({ "id": "job_abcdefghij0123456789", "last_event_id": 4, "now": 1_000, "max_ms": 300_000 });
        let s: JobSubscribe = serde_json::from_value(old).expect("the previous release's JobSubscribe decodes");
        assert_eq!((s.id.as_str(), s.last_event_id, s.now, s.max_ms, s.base.as_str()), ("job_abcdefghij0123456789", Some(4), 1_000, 300_000, ""));
    }

    #[test]
    fn a_previous_workers_reservation_without_a_deadline_still_decodes() {
        // Before 558b6a3 a reservation's meta had no real-clock deadline.
        let old = json!({
            "key_hash": "ab".repeat(32), "credential": "publishable", "shopper_id": "s-1", "origin": "https://shop.test",
            "now": 1_000, "idempotency": null, "job": null,
            "reserve": { "id": "gen_x", "ttl_ms": 150_000, "meta": { "model": "fal-virtual-try-on", "garments_count": 1, "endpoint": "/api/images/generate", "job": false } }
        });
        let r: AdmitRequest = serde_json::from_value(old).expect("the previous release's AdmitRequest decodes");
        let meta = r.reserve.and_then(|reserve| reserve.meta).expect("the meta is kept");
        assert_eq!((meta.model.as_str(), meta.garments_count, meta.job, meta.deadline_ms), ("fal-virtual-try-on", 1, false, 0));
        assert_eq!((r.credential, r.shopper_id.as_deref()), (Credential::Publishable, Some("s-1")));
    }

    #[test]
    fn an_admission_request_and_answer_from_before_widgets_and_live_jobs_still_decode() {
        // 78f1597: no credential kind, shopper, job read or reservation meta;
        // the object's answer carried no job.
        let request = json!({ "key_hash": "ab".repeat(32), "origin": null, "now": 1_000, "reserve": { "id": "gen_x", "ttl_ms": 150_000 } });
        let r: AdmitRequest = serde_json::from_value(request).expect("the old AdmitRequest decodes");
        assert_eq!((r.credential, r.shopper_id, r.idempotency.is_none(), r.job.is_none()), (Credential::Secret, None, true, true));
        assert!(r.reserve.is_some_and(|reserve| reserve.meta.is_none()));

        let limits = json!({
            "rate_limit_per_minute": 60, "rate_burst": 60, "rate_remaining": 59, "rate_reset_s": 1, "month": "2026-11",
            "quota_limit": 1000, "quota_used": 0, "quota_reserved": 1, "quota_remaining": 999, "quota_reset_at": 2_000,
            "in_flight": 1, "max_concurrent": 5
        });
        let answer = json!({ "decision": "admitted", "client": { "client_id": "cl_x", "name": "Shop", "allowed_origins": [] }, "limits": limits });
        match serde_json::from_value::<Decision>(answer).expect("the old Decision decodes") {
            Decision::Admitted(a) => assert!(a.job.is_none() && a.limits.quota_reserved == 1),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn fields_a_next_release_adds_are_ignored() {
        // The other direction: this release's object, still running while the
        // next release's workers call it, reads their messages with fields it
        // does not know.
        let newer = json!({ "id": "job_x", "last_event_id": null, "now": 1, "max_ms": 2, "base": "https://api.test", "added_later": true });
        assert!(serde_json::from_value::<JobSubscribe>(newer).is_ok());
        let login = json!({ "now": 1, "window_ms": 900_000, "max_failures": 10, "record_failure": false, "added_later": 1 });
        assert!(serde_json::from_value::<LoginRequest>(login).is_ok());
        let admit = json!({ "key_hash": "", "origin": null, "now": 1, "reserve": null, "added_later": [] });
        assert!(serde_json::from_value::<AdmitRequest>(admit).is_ok());
    }
}
