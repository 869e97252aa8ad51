//! The monthly quota and the concurrency cap. A generation *reserves* a unit
//! of its month's quota and a concurrency slot; its end settles the
//! reservation: a success is charged (once, however often it is reported), a
//! failure or cancellation gives the unit back. Reservations a crashed worker
//! never settled stop holding their slot when they expire and are settled
//! later from D1 by the object's alarm.

use crate::domain::generation::Outcome;
use crate::domain::time::{month_bounds, month_key};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an attempt is, kept with its reservation: if the request dies before
/// recording it (the client went away, the isolate was stopped), the object
/// can still write its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationMeta {
    pub model: String,
    pub garments_count: u64,
    /// The route it came in on (`/api/images/generate`, `/api/jobs`).
    pub endpoint: String,
    /// A job's reservation is named by the job id, a sync one by the generation id.
    pub job: bool,
    /// When, by the real clock, its request has certainly ended (a test may
    /// run its request clock elsewhere): no row is written for it before.
    #[serde(default)]
    pub deadline_ms: u64,
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
    #[serde(default)]
    pub meta: Option<ReservationMeta>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Charged to the month it was reserved in.
    Success,
    /// Released: failures and cancellations cost the client nothing.
    Released,
}

impl From<Outcome> for Settlement {
    /// Only a success is charged; failures and cancellations are released.
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => Settlement::Success,
            Outcome::Error | Outcome::Canceled => Settlement::Released,
        }
    }
}

/// Why a reservation cannot be made now, with the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    TooManyConcurrent { retry_after_s: u64 },
    QuotaExceeded { retry_after_s: u64 },
}

/// Retry hint when every concurrency slot is taken: generations last seconds.
const CONCURRENCY_RETRY_S: u64 = 5;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    /// Successful generations per month.
    pub committed: BTreeMap<String, u64>,
    pub reservations: Vec<Reservation>,
}

impl Quota {
    /// Whether a generation may start under `usage_limit` and
    /// `max_concurrent`; it does not reserve anything (see `reserve`).
    pub fn check(&self, usage_limit: u64, max_concurrent: u64, now: u64) -> Result<(), QuotaRefusal> {
        if self.in_flight(now) >= max_concurrent {
            return Err(QuotaRefusal::TooManyConcurrent { retry_after_s: CONCURRENCY_RETRY_S });
        }
        let month = month_key(now);
        if self.used(&month) + self.reserved(&month) >= usage_limit {
            let retry_after_s = month_end(&month, now).saturating_sub(now).div_ceil(1000).max(1);
            return Err(QuotaRefusal::QuotaExceeded { retry_after_s });
        }
        Ok(())
    }

    /// Holds a unit and a slot under `id` until `now + ttl_ms` (idempotent per id).
    pub fn reserve(&mut self, id: &str, ttl_ms: u64, now: u64, meta: Option<ReservationMeta>) {
        if !self.reservations.iter().any(|r| r.id == id) {
            self.reservations.push(Reservation {
                id: id.to_string(),
                month: month_key(now),
                created_ms: now,
                expires_ms: now + ttl_ms,
                stale: false,
                meta,
            });
        }
    }

    /// Ends a reservation: a success is charged to the month it was reserved
    /// in. A success whose reservation already expired (a job that finished
    /// late) is charged to the current month. Returns whether it charged.
    /// The caller makes sure an id is charged at most once (see `charge_once`).
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
    pub fn mark_stale(&mut self, now: u64) {
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

    pub fn used(&self, month: &str) -> u64 {
        self.committed.get(month).copied().unwrap_or(0)
    }

    /// Generations of `month` still in flight (reserved, not settled).
    pub fn reserved(&self, month: &str) -> u64 {
        self.reservations.iter().filter(|r| r.month == month).count() as u64
    }

    /// Reservations holding a concurrency slot.
    pub fn in_flight(&self, now: u64) -> u64 {
        self.reservations.iter().filter(|r| !r.stale && r.expires_ms > now).count() as u64
    }
}

/// A success already charged for `id` is not charged again: the settlement
/// that applies, given whether storage remembers charging it.
pub fn charge_once(already_charged: bool, outcome: Settlement) -> Settlement {
    if already_charged {
        Settlement::Released
    } else {
        outcome
    }
}

/// The first instant of the month after `month` (ms).
pub fn month_end(month: &str, now: u64) -> u64 {
    month_bounds(month).map_or(now, |(_, end)| end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN_31_NOON: u64 = 1_801_396_800_000; // 2027-01-31T12:00:00Z

    #[test]
    fn reservations_count_against_the_quota_until_settled() {
        let mut q = Quota::default();
        q.reserve("a", 60_000, JAN_31_NOON, None);
        assert_eq!(q.check(1, 10, JAN_31_NOON), Err(QuotaRefusal::QuotaExceeded { retry_after_s: 12 * 3600 }));
        assert!(!q.settle("a", Settlement::Released, JAN_31_NOON));
        assert_eq!(q.check(1, 10, JAN_31_NOON), Ok(()));
    }

    #[test]
    fn a_success_is_charged_to_the_month_it_was_reserved_in() {
        let mut q = Quota::default();
        q.reserve("a", 24 * 3600 * 1000, JAN_31_NOON, None);
        let feb_1 = JAN_31_NOON + 12 * 3600 * 1000;
        assert!(q.settle("a", Settlement::Success, feb_1));
        assert_eq!((q.used("2027-01"), q.used("2027-02")), (1, 0));
        // A late success with no reservation left is charged to the current month.
        assert!(q.settle("gone", Settlement::Success, feb_1));
        assert_eq!(q.used("2027-02"), 1);
    }

    #[test]
    fn expired_reservations_free_their_slot_but_not_their_unit() {
        let mut q = Quota::default();
        q.reserve("a", 1_000, JAN_31_NOON, None);
        assert_eq!(q.check(10, 1, JAN_31_NOON), Err(QuotaRefusal::TooManyConcurrent { retry_after_s: 5 }));
        q.mark_stale(JAN_31_NOON + 1_000);
        assert_eq!(q.check(10, 1, JAN_31_NOON + 1_000), Ok(()));
        assert_eq!(q.reserved("2027-01"), 1);
        assert_eq!(q.next_expiry(), Some(0), "a stale reservation is due at once");
    }

    #[test]
    fn a_charged_success_is_never_charged_again() {
        assert_eq!(charge_once(true, Settlement::Success), Settlement::Released);
        assert_eq!(charge_once(false, Settlement::Success), Settlement::Success);
    }
}
