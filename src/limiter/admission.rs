//! The decision for one request, as pure Rust: access first (key, status,
//! origin), then a rate token, a unit of monthly quota and a concurrency
//! slot, all together or none. The Durable Object around it only loads and
//! stores `LimiterState`.

use super::bucket::Bucket;
use super::protocol::{AdmitRequest, Admission, ClientView, Credential, Decision, LimitStatus, Refusal};
use super::quota::{month_end, Quota, QuotaRefusal, Settlement};
use super::snapshot::{AccessDenied, ClientSnapshot};
use super::widget::{self, ShopperUsage, WidgetRefusal};
use crate::domain::time::month_key;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimiterState {
    pub snapshot: Option<ClientSnapshot>,
    pub bucket: Option<Bucket>,
    /// The rate bucket of the client's browser traffic.
    pub widget_bucket: Option<Bucket>,
    pub quota: Quota,
}

impl LimiterState {
    /// The decision for one request. Checks the credential first, so
    /// 401/403 never consume anything; then takes a rate token, a quota unit
    /// and a concurrency slot together, or none of them. A browser request
    /// (`shopper`: that shopper's usage, which it updates) takes its tokens
    /// from the widget's and the shopper's limits instead of the shop's rate.
    pub fn admit(&mut self, req: &AdmitRequest, shopper: &mut ShopperUsage) -> Decision {
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
            if req.credential == Credential::Secret {
                if let Err(retry_after_s) = bucket.take(rate) {
                    return refused(Refusal::RateLimited { retry_after_s }, self, bucket);
                }
                // Only a taken token changes a bucket: refilling is a function
                // of time, so reads and refusals write nothing.
                self.bucket = Some(bucket);
            } else {
                match widget::take(snapshot.widget, self.widget_bucket, shopper, now) {
                    Ok((widget_bucket, usage)) => {
                        self.widget_bucket = Some(widget_bucket);
                        *shopper = usage;
                    }
                    Err(refusal) => return refused(widget_refusal(refusal), self, bucket),
                }
            }
            self.quota.reserve(&reserve.id, reserve.ttl_ms, now, reserve.meta.clone());
        }
        Decision::Admitted(Admission {
            client: ClientView {
                client_id: snapshot.client_id.clone(),
                name: snapshot.name.clone(),
                allowed_origins: snapshot.allowed_origins.clone(),
            },
            limits: self.status(&snapshot, bucket, now),
            job: None,
        })
    }

    pub fn check_access(&self, req: &AdmitRequest) -> Result<&ClientSnapshot, Refusal> {
        let snapshot = self.snapshot.as_ref().ok_or(Refusal::InvalidApiKey)?;
        snapshot.check_access(req.credential, &req.key_hash, req.origin.as_deref(), req.now).map_err(|denied| match denied {
            AccessDenied::InvalidKey => Refusal::InvalidApiKey,
            AccessDenied::Inactive => Refusal::ClientInactive,
            AccessDenied::OriginNotAllowed => Refusal::OriginNotAllowed,
            AccessDenied::OriginRequired => Refusal::OriginRequired,
        })?;
        Ok(snapshot)
    }

    /// Takes a new copy of the client; a changed rate moves the bucket. A
    /// copy older than the one held is ignored, so a refresh read from D1
    /// before an admin change cannot undo it when it lands after the push.
    /// Returns whether it was taken.
    pub fn apply_snapshot(&mut self, snapshot: ClientSnapshot) -> bool {
        if self.snapshot.as_ref().is_some_and(|old| old.version > snapshot.version) {
            return false;
        }
        if let (Some(old), Some(bucket)) = (&self.snapshot, self.bucket.as_mut()) {
            bucket.rebase(old.rate(), snapshot.rate());
        }
        self.snapshot = Some(snapshot);
        true
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

fn widget_refusal(refusal: WidgetRefusal) -> Refusal {
    match refusal {
        WidgetRefusal::WidgetRateLimited { retry_after_s } => Refusal::WidgetRateLimited { retry_after_s },
        WidgetRefusal::ShopperRateLimited { retry_after_s } => Refusal::ShopperRateLimited { retry_after_s },
        WidgetRefusal::ShopperDailyLimit { retry_after_s } => Refusal::ShopperDailyLimit { retry_after_s },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::protocol::ReserveRequest;
    use crate::domain::api_key::KeyKind;
    use crate::limiter::snapshot::SnapshotKey;
    use crate::limiter::widget::WidgetLimits;

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
            keys: vec![
                SnapshotKey { hash: "good".into(), expires_at: None, kind: KeyKind::Secret },
                SnapshotKey { hash: "old".into(), expires_at: Some(JAN_31_NOON + 1000), kind: KeyKind::Secret },
                SnapshotKey { hash: "public".into(), expires_at: None, kind: KeyKind::Publishable },
            ],
            widget: WidgetLimits { widget_rate_limit_per_minute: 100, shopper_rate_limit_per_minute: 2, shopper_daily_limit: 3 },
            loaded_at: JAN_31_NOON,
            version: 1,
        }
    }

    fn state(usage_limit: u64, rate: u64, max_concurrent: u64) -> LimiterState {
        LimiterState { snapshot: Some(snapshot(usage_limit, rate, max_concurrent)), ..Default::default() }
    }

    fn generation(id: &str, now: u64) -> AdmitRequest {
        AdmitRequest {
            key_hash: "good".into(),
            credential: Credential::Secret,
            shopper_id: None,
            origin: None,
            now,
            reserve: Some(ReserveRequest { id: id.into(), ttl_ms: 60_000, meta: None }),
            idempotency: None,
            job: None,
        }
    }

    impl LimiterState {
        fn admit_server(&mut self, req: &AdmitRequest) -> Decision {
            self.admit(req, &mut ShopperUsage::default())
        }
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
        assert_eq!(refusal(s.admit_server(&bad_key)), Refusal::InvalidApiKey);
        let mut foreign = generation("g", JAN_31_NOON);
        foreign.origin = Some("https://evil.example".into());
        assert_eq!(refusal(s.admit_server(&foreign)), Refusal::OriginNotAllowed);
        s.snapshot.as_mut().unwrap().active = false;
        assert_eq!(refusal(s.admit_server(&generation("g", JAN_31_NOON))), Refusal::ClientInactive);
        assert!(s.quota.reservations.is_empty() && s.bucket.is_none());
    }

    #[test]
    fn grace_period_keys_stop_at_their_expiry() {
        let mut s = state(10, 10, 4);
        let mut old = generation("g", JAN_31_NOON);
        old.key_hash = "old".into();
        assert!(admitted(&s.admit_server(&old)));
        old.now = JAN_31_NOON + 1000;
        assert_eq!(refusal(s.admit_server(&old)), Refusal::InvalidApiKey);
    }

    #[test]
    fn the_bucket_admits_a_burst_then_refuses_with_a_retry_hint() {
        let mut s = state(1000, 6, 100);
        for i in 0..6 {
            assert!(admitted(&s.admit_server(&generation(&format!("g{i}"), JAN_31_NOON))));
        }
        // 6 per minute: the next token comes in 10 s.
        assert_eq!(refusal(s.admit_server(&generation("g6", JAN_31_NOON))), Refusal::RateLimited { retry_after_s: 10 });
        assert!(admitted(&s.admit_server(&generation("g7", JAN_31_NOON + 10_000))));
    }

    #[test]
    fn reads_without_a_reservation_take_no_token() {
        let mut s = state(1, 1, 1);
        let read = AdmitRequest { reserve: None, ..generation("r", JAN_31_NOON) };
        for _ in 0..5 {
            assert!(admitted(&s.admit_server(&read)));
        }
        assert!(admitted(&s.admit_server(&generation("g", JAN_31_NOON))));
    }

    #[test]
    fn the_quota_counts_reservations_so_it_cannot_be_overshot() {
        let mut s = state(2, 100, 100);
        assert!(admitted(&s.admit_server(&generation("a", JAN_31_NOON))));
        assert!(admitted(&s.admit_server(&generation("b", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit_server(&generation("c", JAN_31_NOON))), Refusal::QuotaExceeded { .. }));
        // A failure gives its unit back; a success keeps it.
        s.settle("a", Settlement::Released, JAN_31_NOON);
        s.settle("b", Settlement::Success, JAN_31_NOON);
        assert!(admitted(&s.admit_server(&generation("d", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit_server(&generation("e", JAN_31_NOON))), Refusal::QuotaExceeded { .. }));
    }

    #[test]
    fn the_quota_resets_at_the_month_boundary() {
        let mut s = state(1, 100, 100);
        assert!(admitted(&s.admit_server(&generation("a", JAN_31_NOON))));
        s.settle("a", Settlement::Success, JAN_31_NOON);
        match s.admit_server(&generation("b", JAN_31_NOON)) {
            Decision::Refused { refusal: Refusal::QuotaExceeded { retry_after_s }, .. } => assert_eq!(retry_after_s, 12 * 3600),
            other => panic!("{other:?}"),
        }
        let feb_1 = JAN_31_NOON + 12 * 3600 * 1000;
        assert!(admitted(&s.admit_server(&generation("c", feb_1))));
        assert_eq!(s.status_now(feb_1).unwrap().month, "2027-02");
    }

    #[test]
    fn concurrency_is_capped_and_expired_reservations_free_their_slot() {
        let mut s = state(100, 100, 2);
        assert!(admitted(&s.admit_server(&generation("a", JAN_31_NOON))));
        assert!(admitted(&s.admit_server(&generation("b", JAN_31_NOON))));
        assert_eq!(refusal(s.admit_server(&generation("c", JAN_31_NOON))), Refusal::TooManyConcurrent { retry_after_s: 5 });
        let later = JAN_31_NOON + 60_000;
        assert!(admitted(&s.admit_server(&generation("d", later))), "a and b expired");
        let due: Vec<String> = s.quota.due_for_reconciliation(later).into_iter().map(|r| r.id).collect();
        assert_eq!(due, vec!["a", "b"]);
        // Until reconciled, expired reservations still count against the quota.
        assert_eq!(s.status_now(later).unwrap().quota_reserved, 3);
    }

    #[test]
    fn an_older_copy_of_the_client_never_replaces_a_newer_one() {
        let mut s = state(10, 10, 4);
        let mut revoked = snapshot(10, 10, 4);
        revoked.version = 5;
        revoked.keys.clear();
        assert!(s.apply_snapshot(revoked));
        let mut stale_refresh = snapshot(10, 10, 4);
        stale_refresh.version = 4;
        assert!(!s.apply_snapshot(stale_refresh), "a refresh read before the revocation landed later");
        assert_eq!(refusal(s.admit_server(&generation("g", JAN_31_NOON))), Refusal::InvalidApiKey);
    }

    #[test]
    fn reads_and_refusals_leave_the_stored_bucket_alone() {
        let mut s = state(0, 10, 4);
        let read = AdmitRequest { reserve: None, ..generation("r", JAN_31_NOON) };
        assert!(admitted(&s.admit_server(&read)));
        assert!(matches!(refusal(s.admit_server(&generation("g", JAN_31_NOON))), Refusal::QuotaExceeded { .. }));
        assert_eq!(s.bucket, None);
    }

    fn browser(id: &str, shopper: &str, now: u64) -> AdmitRequest {
        AdmitRequest {
            key_hash: "public".into(),
            credential: Credential::Publishable,
            shopper_id: Some(shopper.into()),
            origin: Some("https://shop.example".into()),
            ..generation(id, now)
        }
    }

    #[test]
    fn a_publishable_key_needs_an_allowed_origin_and_is_no_secret_key() {
        let mut s = state(10, 10, 4);
        let mut usage = ShopperUsage::default();
        let no_origin = AdmitRequest { origin: None, ..browser("g", "anon_a", JAN_31_NOON) };
        assert_eq!(refusal(s.admit(&no_origin, &mut usage)), Refusal::OriginRequired);
        let foreign = AdmitRequest { origin: Some("https://evil.example".into()), ..browser("g", "anon_a", JAN_31_NOON) };
        assert_eq!(refusal(s.admit(&foreign, &mut usage)), Refusal::OriginNotAllowed);
        let as_secret = AdmitRequest { credential: Credential::Secret, ..browser("g", "anon_a", JAN_31_NOON) };
        assert_eq!(refusal(s.admit(&as_secret, &mut usage)), Refusal::InvalidApiKey, "a publishable key is not a secret key");
        let secret_as_publishable = AdmitRequest { key_hash: "good".into(), ..browser("g", "anon_a", JAN_31_NOON) };
        assert_eq!(refusal(s.admit(&secret_as_publishable, &mut usage)), Refusal::InvalidApiKey);
        assert!(s.quota.reservations.is_empty() && usage == ShopperUsage::default(), "refusals take nothing");
        assert!(admitted(&s.admit(&browser("g", "anon_a", JAN_31_NOON), &mut usage)));
    }

    #[test]
    fn browser_traffic_has_its_own_rate_and_a_per_shopper_limit() {
        let mut s = state(100, 1, 100);
        let mut usage = ShopperUsage::default();
        assert!(admitted(&s.admit(&browser("a", "anon_a", JAN_31_NOON), &mut usage)));
        assert!(admitted(&s.admit(&browser("b", "anon_a", JAN_31_NOON), &mut usage)));
        assert_eq!(refusal(s.admit(&browser("c", "anon_a", JAN_31_NOON), &mut usage)), Refusal::ShopperRateLimited { retry_after_s: 30 });
        assert!(admitted(&s.admit_server(&generation("d", JAN_31_NOON))), "the shop's own rate is untouched");
        let later = JAN_31_NOON + 3_600_000;
        assert!(admitted(&s.admit(&browser("e", "anon_a", later), &mut usage)));
        assert!(matches!(refusal(s.admit(&browser("f", "anon_a", later + 3_600_000), &mut usage)), Refusal::ShopperDailyLimit { .. }));
    }

    #[test]
    fn raising_a_limit_applies_at_once() {
        let mut s = state(1000, 1, 100);
        assert!(admitted(&s.admit_server(&generation("a", JAN_31_NOON))));
        assert!(matches!(refusal(s.admit_server(&generation("b", JAN_31_NOON))), Refusal::RateLimited { .. }));
        s.apply_snapshot(snapshot(1000, 100, 100));
        assert!(admitted(&s.admit_server(&generation("c", JAN_31_NOON))));
        s.apply_snapshot(snapshot(1000, 1, 100));
        assert!(matches!(refusal(s.admit_server(&generation("d", JAN_31_NOON))), Refusal::RateLimited { .. }));
    }
}
