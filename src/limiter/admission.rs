//! The decision for one request, as pure Rust: access first (key, status,
//! origin), then a rate token, a unit of monthly quota and a concurrency
//! slot, all together or none. The Durable Object around it only loads and
//! stores `LimiterState`.

use super::bucket::Bucket;
use super::protocol::{AdmitRequest, Admission, ClientView, Decision, LimitStatus, Refusal};
use super::quota::{month_end, Quota, QuotaRefusal, Settlement};
use super::snapshot::{AccessDenied, ClientSnapshot};
use crate::domain::time::month_key;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimiterState {
    pub snapshot: Option<ClientSnapshot>,
    pub bucket: Option<Bucket>,
    pub quota: Quota,
}

impl LimiterState {
    /// The decision for one request. Checks the key first, so 401/403 never
    /// consume anything; then takes a rate token, a quota unit and a
    /// concurrency slot together, or none of them.
    pub fn admit(&mut self, req: &AdmitRequest) -> Decision {
        let now = req.now;
        let snapshot = match self.check_access(req) {
            Ok(s) => s.clone(),
            Err(refusal) => return Decision::Refused { refusal, limits: None },
        };
        let rate = snapshot.rate();
        self.quota.mark_stale(now);
        let mut bucket = Bucket::refilled(self.bucket, rate, now);
        if let Some(reserve) = &req.reserve {
            let refused = |refusal, state: &Self, bucket| Decision::Refused { refusal, limits: Some(state.status(&snapshot, bucket, now)) };
            match self.quota.check(snapshot.usage_limit, snapshot.max_concurrent, now) {
                Err(QuotaRefusal::TooManyConcurrent { retry_after_s }) => {
                    return refused(Refusal::TooManyConcurrent { retry_after_s }, self, bucket)
                }
                Err(QuotaRefusal::QuotaExceeded { retry_after_s }) => {
                    return refused(Refusal::QuotaExceeded { retry_after_s }, self, bucket)
                }
                Ok(()) => {}
            }
            if let Err(retry_after_s) = bucket.take(rate) {
                self.bucket = Some(bucket);
                return refused(Refusal::RateLimited { retry_after_s }, self, bucket);
            }
            self.quota.reserve(&reserve.id, reserve.ttl_ms, now);
        }
        self.bucket = Some(bucket);
        Decision::Admitted(Admission {
            client: ClientView {
                client_id: snapshot.client_id.clone(),
                name: snapshot.name.clone(),
                allowed_origins: snapshot.allowed_origins.clone(),
            },
            limits: self.status(&snapshot, bucket, now),
        })
    }

    pub fn check_access(&self, req: &AdmitRequest) -> Result<&ClientSnapshot, Refusal> {
        let snapshot = self.snapshot.as_ref().ok_or(Refusal::InvalidApiKey)?;
        snapshot.check_access(&req.key_hash, req.origin.as_deref(), req.now).map_err(|denied| match denied {
            AccessDenied::InvalidKey => Refusal::InvalidApiKey,
            AccessDenied::Inactive => Refusal::ClientInactive,
            AccessDenied::OriginNotAllowed => Refusal::OriginNotAllowed,
        })?;
        Ok(snapshot)
    }

    /// Takes a new copy of the client; a changed rate moves the bucket.
    pub fn apply_snapshot(&mut self, snapshot: ClientSnapshot) {
        if let (Some(old), Some(bucket)) = (&self.snapshot, self.bucket.as_mut()) {
            bucket.rebase(old.rate(), snapshot.rate());
        }
        self.snapshot = Some(snapshot);
    }

    pub fn settle(&mut self, id: &str, outcome: Settlement, now: u64) -> bool {
        self.quota.settle(id, outcome, now)
    }

    /// Usage and limits as of `now`, without changing anything.
    pub fn status_now(&self, now: u64) -> Option<LimitStatus> {
        let snapshot = self.snapshot.as_ref()?;
        Some(self.status(snapshot, Bucket::refilled(self.bucket, snapshot.rate(), now), now))
    }

    fn status(&self, snapshot: &ClientSnapshot, bucket: Bucket, now: u64) -> LimitStatus {
        let month = month_key(now);
        let used = self.quota.used(&month);
        let reserved = self.quota.reserved(&month);
        let rate = snapshot.rate();
        LimitStatus {
            rate_limit_per_minute: snapshot.rate_limit_per_minute,
            rate_burst: rate.burst as u64,
            rate_remaining: bucket.remaining(),
            rate_reset_s: bucket.reset_s(rate),
            quota_limit: snapshot.usage_limit,
            quota_used: used,
            quota_reserved: reserved,
            quota_remaining: snapshot.usage_limit.saturating_sub(used + reserved),
            quota_reset_at: month_end(&month, now),
            in_flight: self.quota.in_flight(now),
            max_concurrent: snapshot.max_concurrent,
            month,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::protocol::ReserveRequest;
    use crate::limiter::snapshot::SnapshotKey;

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
        assert!(s.quota.reservations.is_empty() && s.bucket.is_none());
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
        let due: Vec<String> = s.quota.due_for_reconciliation(later).into_iter().map(|r| r.id).collect();
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
}
