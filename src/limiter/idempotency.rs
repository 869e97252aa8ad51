//! `Idempotency-Key` decisions, as pure functions the object persists: the
//! same key and request within a day replays the first answer; the same key
//! with another request, or while the first is still running, is refused.

use super::protocol::StoredResponse;

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

/// How long the key stays locked while its request runs: as long as the
/// request's reservation, or a minute for a request that reserves nothing.
pub fn lock_ttl_ms(reservation_ttl_ms: Option<u64>) -> u64 {
    reservation_ttl_ms.unwrap_or(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
