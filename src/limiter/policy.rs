//! The limiter's decisions, as pure Rust: which key is valid, and whether a
//! generation may start under the client's rate, monthly quota and
//! concurrency limits — all three decided together, atomically, in one call.
//! The Durable Object around it only loads and stores this state.

use crate::domain::client::origin_allowed;
use crate::domain::time::{month_bounds, month_key};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the limiter knows of its client: a copy of D1, replaced by the admin
/// API on every change and reloaded from D1 when older than `SNAPSHOT_MAX_AGE_MS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSnapshot {
    pub client_id: String,
    /// False when D1 has no such client (a forged key naming a made-up client).
    pub exists: bool,
    pub name: String,
    pub active: bool,
    pub usage_limit: u64,
    pub rate_limit_per_minute: u64,
    pub rate_limit_burst: Option<u64>,
    pub max_concurrent: u64,
    pub allowed_origins: Vec<String>,
    pub keys: Vec<SnapshotKey>,
    pub loaded_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotKey {
    pub hash: String,
    pub expires_at: Option<u64>,
}

/// A safety net only: the admin API pushes every change synchronously.
pub const SNAPSHOT_MAX_AGE_MS: u64 = 10 * 60 * 1000;

impl ClientSnapshot {
    pub fn missing(client_id: &str, now: u64) -> Self {
        Self {
            client_id: client_id.to_string(),
            exists: false,
            name: String::new(),
            active: false,
            usage_limit: 0,
            rate_limit_per_minute: 1,
            rate_limit_burst: None,
            max_concurrent: 0,
            allowed_origins: Vec::new(),
            keys: Vec::new(),
            loaded_at: now,
        }
    }

    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.loaded_at) > SNAPSHOT_MAX_AGE_MS || now < self.loaded_at.saturating_sub(SNAPSHOT_MAX_AGE_MS)
    }

    fn accepts(&self, key_hash: &str, now: u64) -> bool {
        self.exists && self.keys.iter().any(|k| k.hash == key_hash && k.expires_at.is_none_or(|t| t > now))
    }

    fn burst(&self) -> f64 {
        self.rate_limit_burst.unwrap_or(self.rate_limit_per_minute).max(1) as f64
    }
}

/// Token bucket: `burst` tokens, refilled at `rate_limit_per_minute` per minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub tokens: f64,
    pub updated_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: String,
    /// `YYYY-MM` of the request: the month a success is charged to.
    pub month: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// Expired by a request's clock, waiting for the alarm to settle it from D1.
    pub stale: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimiterState {
    pub snapshot: Option<ClientSnapshot>,
    pub bucket: Option<Bucket>,
    /// Successful generations per month.
    pub committed: BTreeMap<String, u64>,
    pub reservations: Vec<Reservation>,
}

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

/// Idempotency keys are remembered for a day.
pub const IDEMPOTENCY_RETENTION_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub response: Option<StoredResponse>,
    /// Until then, a request without a response is still running; after it,
    /// its worker is presumed dead and the key may be used again.
    pub lock_expires_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyCheck {
    Proceed,
    Replay(StoredResponse),
    Mismatch,
    InProgress,
}

pub fn check_idempotency(existing: Option<&IdempotencyRecord>, fingerprint: &str, now: u64) -> IdempotencyCheck {
    match existing {
        Some(r) if r.expires_ms <= now => IdempotencyCheck::Proceed,
        Some(r) if r.fingerprint != fingerprint => IdempotencyCheck::Mismatch,
        Some(IdempotencyRecord { response: Some(response), .. }) => IdempotencyCheck::Replay(response.clone()),
        Some(r) if r.lock_expires_ms > now => IdempotencyCheck::InProgress,
        _ => IdempotencyCheck::Proceed,
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReserveRequest {
    pub id: String,
    pub ttl_ms: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Charged to the month it was reserved in.
    Success,
    /// Released: failures and cancellations cost the client nothing.
    Released,
}

/// Retry hint when every concurrency slot is taken: generations last seconds.
const CONCURRENCY_RETRY_S: u64 = 5;

impl LimiterState {
    /// The decision for one request. Checks the key first, so 401/403 never
    /// consume anything; then takes a rate token, a quota unit and a
    /// concurrency slot together, or none of them.
    pub fn admit(&mut self, req: &AdmitRequest) -> Decision {
        let now = req.now;
        let snapshot = match self.check_access(req) {
            Ok(s) => s.clone(),
            Err(refusal) => return refused(refusal, None),
        };
        self.mark_stale(now);
        let mut bucket = self.refilled_bucket(&snapshot, now);
        if let Some(reserve) = &req.reserve {
            let status = self.status(&snapshot, bucket, now);
            if status.in_flight >= snapshot.max_concurrent {
                return refused(Refusal::TooManyConcurrent { retry_after_s: CONCURRENCY_RETRY_S }, Some(status));
            }
            if status.quota_used + status.quota_reserved >= snapshot.usage_limit {
                let retry_after_s = status.quota_reset_at.saturating_sub(now).div_ceil(1000).max(1);
                return refused(Refusal::QuotaExceeded { retry_after_s }, Some(status));
            }
            if bucket.tokens < 1.0 {
                let per_ms = snapshot.rate_limit_per_minute as f64 / 60_000.0;
                let retry_after_s = (((1.0 - bucket.tokens) / per_ms) / 1000.0).ceil().max(1.0) as u64;
                self.bucket = Some(bucket);
                return refused(Refusal::RateLimited { retry_after_s }, Some(status));
            }
            bucket.tokens -= 1.0;
            if !self.reservations.iter().any(|r| r.id == reserve.id) {
                self.reservations.push(Reservation {
                    id: reserve.id.clone(),
                    month: month_key(now),
                    created_ms: now,
                    expires_ms: now + reserve.ttl_ms,
                    stale: false,
                });
            }
        }
        self.bucket = Some(bucket);
        let limits = self.status(&snapshot, bucket, now);
        Decision::Admitted(Admission {
            client: ClientView {
                client_id: snapshot.client_id.clone(),
                name: snapshot.name.clone(),
                allowed_origins: snapshot.allowed_origins.clone(),
            },
            limits,
        })
    }

    /// The key, the client's status and the origin: what must pass before
    /// anything is taken or an idempotency key is looked at.
    pub fn check_access(&self, req: &AdmitRequest) -> Result<&ClientSnapshot, Refusal> {
        let snapshot = self.snapshot.as_ref().ok_or(Refusal::InvalidApiKey)?;
        if !snapshot.accepts(&req.key_hash, req.now) {
            return Err(Refusal::InvalidApiKey);
        }
        if !snapshot.active {
            return Err(Refusal::ClientInactive);
        }
        match &req.origin {
            Some(origin) if !origin_allowed(&snapshot.allowed_origins, origin) => Err(Refusal::OriginNotAllowed),
            _ => Ok(snapshot),
        }
    }

    /// Takes a new copy of the client. A changed burst moves the bucket by
    /// the difference, so raising a limit helps at once and lowering it bites at once.
    pub fn apply_snapshot(&mut self, snapshot: ClientSnapshot) {
        if let (Some(old), Some(bucket)) = (&self.snapshot, self.bucket.as_mut()) {
            let (old_burst, new_burst) = (old.burst(), snapshot.burst());
            bucket.tokens = (bucket.tokens + (new_burst - old_burst)).clamp(0.0, new_burst);
        }
        self.snapshot = Some(snapshot);
    }

    /// Ends a reservation: a success is charged to the month it was reserved
    /// in. A success whose reservation already expired (a job that finished
    /// late) is charged to the current month. The caller makes sure an id is
    /// charged at most once (the object remembers settled ids).
    pub fn settle(&mut self, id: &str, outcome: Settlement, now: u64) -> bool {
        let month = match self.reservations.iter().position(|r| r.id == id) {
            Some(index) => self.reservations.remove(index).month,
            None => month_key(now),
        };
        if outcome == Settlement::Success {
            *self.committed.entry(month).or_insert(0) += 1;
        }
        outcome == Settlement::Success
    }

    /// Reservations a crashed worker never settled stop holding a
    /// concurrency slot once expired; the alarm settles them from D1.
    fn mark_stale(&mut self, now: u64) {
        for r in self.reservations.iter_mut().filter(|r| r.expires_ms <= now) {
            r.stale = true;
        }
    }

    /// Reservations to reconcile against D1 now.
    pub fn due_for_reconciliation(&self, now: u64) -> Vec<Reservation> {
        self.reservations.iter().filter(|r| r.stale || r.expires_ms <= now).cloned().collect()
    }

    pub fn next_expiry(&self) -> Option<u64> {
        self.reservations.iter().map(|r| if r.stale { 0 } else { r.expires_ms }).min()
    }

    fn refilled_bucket(&self, snapshot: &ClientSnapshot, now: u64) -> Bucket {
        let burst = snapshot.burst();
        match self.bucket {
            None => Bucket { tokens: burst, updated_ms: now },
            Some(b) => {
                // A clock that steps back (tests, clock skew) refills nothing.
                let elapsed = now.saturating_sub(b.updated_ms) as f64;
                let per_ms = snapshot.rate_limit_per_minute as f64 / 60_000.0;
                Bucket { tokens: (b.tokens + elapsed * per_ms).min(burst), updated_ms: now.max(b.updated_ms) }
            }
        }
    }

    /// Usage and limits as of `now`, without changing anything.
    pub fn status_now(&self, now: u64) -> Option<LimitStatus> {
        let snapshot = self.snapshot.as_ref()?;
        Some(self.status(snapshot, self.refilled_bucket(snapshot, now), now))
    }

    fn status(&self, snapshot: &ClientSnapshot, bucket: Bucket, now: u64) -> LimitStatus {
        let month = month_key(now);
        let used = self.committed.get(&month).copied().unwrap_or(0);
        let reserved = self.reservations.iter().filter(|r| r.month == month).count() as u64;
        let in_flight = self.reservations.iter().filter(|r| !r.stale && r.expires_ms > now).count() as u64;
        let burst = snapshot.burst();
        let per_ms = snapshot.rate_limit_per_minute as f64 / 60_000.0;
        let reset_at = month_bounds(&month).map_or(now, |(_, end)| end);
        LimitStatus {
            rate_limit_per_minute: snapshot.rate_limit_per_minute,
            rate_burst: burst as u64,
            rate_remaining: bucket.tokens.max(0.0).floor() as u64,
            rate_reset_s: ((burst - bucket.tokens).max(0.0) / per_ms / 1000.0).ceil() as u64,
            month,
            quota_limit: snapshot.usage_limit,
            quota_used: used,
            quota_reserved: reserved,
            quota_remaining: snapshot.usage_limit.saturating_sub(used + reserved),
            quota_reset_at: reset_at,
            in_flight,
            max_concurrent: snapshot.max_concurrent,
        }
    }
}

fn refused(refusal: Refusal, limits: Option<LimitStatus>) -> Decision {
    Decision::Refused { refusal, limits }
}

/// Admin login attempts: failures within a sliding window.
pub fn login_allowed(failures: &[u64], now: u64, window_ms: u64, max_failures: usize) -> Result<(), u64> {
    let recent: Vec<u64> = failures.iter().copied().filter(|t| *t + window_ms > now).collect();
    if recent.len() < max_failures {
        return Ok(());
    }
    let oldest = recent.iter().min().copied().unwrap_or(now);
    Err((oldest + window_ms).saturating_sub(now).div_ceil(1000).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_31_NOON: u64 = 1_801_396_800_000; // 2027-01-31T12:00:00Z

    fn snapshot(usage_limit: u64, rate: u64, max_concurrent: u64) -> ClientSnapshot {
        ClientSnapshot {
            client_id: "cl_a".into(),
            exists: true,
            name: "A".into(),
            active: true,
            usage_limit,
            rate_limit_per_minute: rate,
            rate_limit_burst: None,
            max_concurrent,
            allowed_origins: vec!["https://shop.example".into()],
            keys: vec![SnapshotKey { hash: "good".into(), expires_at: None }, SnapshotKey { hash: "old".into(), expires_at: Some(JAN_31_NOON + 1000) }],
            loaded_at: JAN_31_NOON,
        }
    }

    fn state(usage_limit: u64, rate: u64, max_concurrent: u64) -> LimiterState {
        LimiterState { snapshot: Some(snapshot(usage_limit, rate, max_concurrent)), ..Default::default() }
    }

    fn generation(id: &str, now: u64) -> AdmitRequest {
        AdmitRequest { key_hash: "good".into(), origin: None, now, reserve: Some(ReserveRequest { id: id.into(), ttl_ms: 60_000 }), idempotency: None }
    }

    fn refusal(d: Decision) -> Refusal {
        match d {
            Decision::Refused { refusal, .. } => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn admitted(d: &Decision) -> bool {
        matches!(d, Decision::Admitted(_))
    }

    #[test]
    fn keys_inactive_clients_and_origins_are_checked_before_anything_is_taken() {
        let mut s = state(10, 10, 4);
        let mut bad_key = generation("g", JAN_31_NOON);
        bad_key.key_hash = "nope".into();
        assert_eq!(refusal(s.admit(&bad_key)), Refusal::InvalidApiKey);
        let mut foreign = generation("g", JAN_31_NOON);
        foreign.origin = Some("https://evil.example".into());
        assert_eq!(refusal(s.admit(&foreign)), Refusal::OriginNotAllowed);
        s.snapshot.as_mut().unwrap().active = false;
        assert_eq!(refusal(s.admit(&generation("g", JAN_31_NOON))), Refusal::ClientInactive);
        assert!(s.reservations.is_empty() && s.bucket.is_none());
    }

    #[test]
    fn grace_period_keys_stop_at_their_expiry() {
        let mut s = state(10, 10, 4);
        let mut old = generation("g", JAN_31_NOON);
        old.key_hash = "old".into();
        assert!(admitted(&s.admit(&old)));
        old.now = JAN_31_NOON + 1000;
        assert_eq!(refusal(s.admit(&old)), Refusal::InvalidApiKey);
    }

    #[test]
    fn the_bucket_admits_a_burst_then_refuses_with_a_retry_hint() {
        let mut s = state(1000, 6, 100);
        for i in 0..6 {
            assert!(admitted(&s.admit(&generation(&format!("g{i}"), JAN_31_NOON))));
        }
        // 6 per minute: the next token comes in 10 s.
        assert_eq!(refusal(s.admit(&generation("g6", JAN_31_NOON))), Refusal::RateLimited { retry_after_s: 10 });
        assert!(admitted(&s.admit(&generation("g7", JAN_31_NOON + 10_000))));
    }

    #[test]
    fn reads_without_a_reservation_take_no_token() {
        let mut s = state(1, 1, 1);
        let read = AdmitRequest { key_hash: "good".into(), origin: None, now: JAN_31_NOON, reserve: None, idempotency: None };
        for _ in 0..5 {
            assert!(admitted(&s.admit(&read)));
        }
        assert!(admitted(&s.admit(&generation("g", JAN_31_NOON))));
    }

    #[test]
    fn the_quota_counts_reservations_so_it_cannot_be_overshot() {
        let mut s = state(2, 100, 100);
        assert!(admitted(&s.admit(&generation("a", JAN_31_NOON))));
        assert!(admitted(&s.admit(&generation("b", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit(&generation("c", JAN_31_NOON))), Refusal::QuotaExceeded { .. }));
        // A failure gives its unit back; a success keeps it.
        s.settle("a", Settlement::Released, JAN_31_NOON);
        s.settle("b", Settlement::Success, JAN_31_NOON);
        assert!(admitted(&s.admit(&generation("d", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit(&generation("e", JAN_31_NOON))), Refusal::QuotaExceeded { .. }));
    }

    #[test]
    fn the_quota_resets_at_the_month_boundary() {
        let mut s = state(1, 100, 100);
        assert!(admitted(&s.admit(&generation("a", JAN_31_NOON))));
        s.settle("a", Settlement::Success, JAN_31_NOON);
        match s.admit(&generation("b", JAN_31_NOON)) {
            Decision::Refused { refusal: Refusal::QuotaExceeded { retry_after_s }, .. } => assert_eq!(retry_after_s, 12 * 3600),
            other => panic!("{other:?}"),
        }
        let feb_1 = JAN_31_NOON + 12 * 3600 * 1000;
        assert!(admitted(&s.admit(&generation("c", feb_1))));
        assert_eq!(s.status_now(feb_1).unwrap().month, "2027-02");
    }

    #[test]
    fn concurrency_is_capped_and_expired_reservations_free_their_slot() {
        let mut s = state(100, 100, 2);
        assert!(admitted(&s.admit(&generation("a", JAN_31_NOON))));
        assert!(admitted(&s.admit(&generation("b", JAN_31_NOON))));
        assert_eq!(refusal(s.admit(&generation("c", JAN_31_NOON))), Refusal::TooManyConcurrent { retry_after_s: 5 });
        let later = JAN_31_NOON + 60_000;
        assert!(admitted(&s.admit(&generation("d", later))), "a and b expired");
        let due: Vec<String> = s.due_for_reconciliation(later).into_iter().map(|r| r.id).collect();
        assert_eq!(due, vec!["a", "b"]);
        // Until reconciled, expired reservations still count against the quota.
        assert_eq!(s.status_now(later).unwrap().quota_reserved, 3);
    }

    #[test]
    fn raising_a_limit_applies_at_once() {
        let mut s = state(1000, 1, 100);
        assert!(admitted(&s.admit(&generation("a", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit(&generation("b", JAN_31_NOON))), Refusal::RateLimited { .. }));
        s.apply_snapshot(snapshot(1000, 100, 100));
        assert!(admitted(&s.admit(&generation("c", JAN_31_NOON))));
        s.apply_snapshot(snapshot(1000, 1, 100));
        assert!(matches!(refusal(s.admit(&generation("d", JAN_31_NOON))), Refusal::RateLimited { .. }));
    }

    #[test]
    fn idempotency_replays_refuses_mismatches_and_waits_for_running_requests() {
        let done = IdempotencyRecord {
            fingerprint: "f1".into(),
            response: Some(StoredResponse { status: 200, body: "{}".into(), location: None }),
            lock_expires_ms: 10,
            expires_ms: 1_000,
        };
        assert_eq!(check_idempotency(None, "f1", 5), IdempotencyCheck::Proceed);
        assert!(matches!(check_idempotency(Some(&done), "f1", 5), IdempotencyCheck::Replay(_)));
        assert_eq!(check_idempotency(Some(&done), "f2", 5), IdempotencyCheck::Mismatch);
        assert_eq!(check_idempotency(Some(&done), "f2", 1_000), IdempotencyCheck::Proceed, "a day later the key is free");
        let running = IdempotencyRecord { response: None, ..done };
        assert_eq!(check_idempotency(Some(&running), "f1", 5), IdempotencyCheck::InProgress);
        assert_eq!(check_idempotency(Some(&running), "f1", 10), IdempotencyCheck::Proceed, "its worker died");
    }

    #[test]
    fn login_failures_lock_out_for_the_rest_of_the_window() {
        let window = 15 * 60 * 1000;
        let failures: Vec<u64> = (0..10).map(|i| 1_000 + i).collect();
        assert_eq!(login_allowed(&failures[..9], 2_000, window, 10), Ok(()));
        assert_eq!(login_allowed(&failures, 2_000, window, 10), Err(899));
        assert_eq!(login_allowed(&failures, 1_000 + window, window, 10), Ok(()));
    }
}
