//! What an attempt's result means for the delivery, the client and the queue
//! message. Pure: the consumer gathers the facts, this decides.

use super::schedule::{Next, Schedule};
use crate::domain::event::{DeliveryStatus, Destination};
use crate::store::deliveries::CallbackHealth;

/// What to do with the queue message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Done with it (delivered, paused, superseded, or nothing to deliver).
    Ack,
    /// Deliver it again after this many seconds (the queue's per-message delay).
    Retry { delay_s: u32 },
    /// Out of attempts: retried once more past `max_retries`, the queue moves
    /// it to the dead-letter queue, whose consumer marks the delivery failed.
    DeadLetter,
}

/// The facts of one finished attempt.
pub struct Facts<'a> {
    pub destination: Destination,
    /// The queue's attempt number for this message (1-based).
    pub attempt: u32,
    pub succeeded: bool,
    pub now: u64,
    /// The client's first failure since its last success (callbacks only).
    pub failing_since: Option<u64>,
    pub pause_after_ms: u64,
    pub schedule: &'a Schedule<'a>,
    /// A random number in [0, 1) for the jitter.
    pub unit: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<u64>,
    /// `None` for metrics deliveries: the operators' endpoint is never paused.
    pub health: Option<CallbackHealth>,
    pub queue: QueueAction,
}

pub fn judge(f: &Facts) -> Verdict {
    let callback = f.destination == Destination::Callback;
    if f.succeeded {
        return Verdict {
            status: DeliveryStatus::Delivered,
            next_attempt_at: None,
            health: callback.then_some(CallbackHealth::Succeeded),
            queue: QueueAction::Ack,
        };
    }
    if callback && should_pause(f.failing_since, f.now, f.pause_after_ms) {
        return Verdict {
            status: DeliveryStatus::Paused,
            next_attempt_at: None,
            health: Some(CallbackHealth::Paused),
            queue: QueueAction::Ack,
        };
    }
    let health = callback.then_some(CallbackHealth::Failing);
    match f.schedule.after_failure(f.attempt, f.unit) {
        Next::RetryIn(delay_s) => Verdict {
            status: DeliveryStatus::Retrying,
            next_attempt_at: Some(f.now + u64::from(delay_s) * 1000),
            health,
            queue: QueueAction::Retry { delay_s },
        },
        Next::GiveUp => Verdict { status: DeliveryStatus::Failed, next_attempt_at: None, health, queue: QueueAction::DeadLetter },
    }
}

/// A client's endpoint that has failed, without a single success, since
/// `failing_since` (this failure starts the streak when there is none) is
/// paused once the streak is `pause_after_ms` long.
pub fn should_pause(failing_since: Option<u64>, now: u64, pause_after_ms: u64) -> bool {
    now.saturating_sub(failing_since.unwrap_or(now)) >= pause_after_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;
    const DELAYS: [u32; 3] = [10, 30, 120];

    fn facts(destination: Destination, attempt: u32, succeeded: bool, failing_since: Option<u64>) -> Verdict {
        let schedule = Schedule::new(&DELAYS);
        judge(&Facts {
            destination,
            attempt,
            succeeded,
            now: 10 * DAY,
            failing_since,
            pause_after_ms: DAY,
            schedule: &schedule,
            unit: 0.5,
        })
    }

    #[test]
    fn a_success_delivers_and_clears_the_clients_failure_streak() {
        let v = facts(Destination::Callback, 3, true, Some(9 * DAY));
        assert_eq!(v.status, DeliveryStatus::Delivered);
        assert_eq!((v.health, v.queue, v.next_attempt_at), (Some(CallbackHealth::Succeeded), QueueAction::Ack, None));
    }

    #[test]
    fn a_failure_is_retried_after_the_schedules_delay_with_its_time_logged() {
        let v = facts(Destination::Callback, 2, false, None);
        assert_eq!(v.status, DeliveryStatus::Retrying);
        assert_eq!(v.queue, QueueAction::Retry { delay_s: 30 });
        assert_eq!(v.next_attempt_at, Some(10 * DAY + 30_000));
        assert_eq!(v.health, Some(CallbackHealth::Failing));
    }

    #[test]
    fn the_last_failure_fails_the_delivery_and_sends_the_message_to_the_dead_letter_queue() {
        let v = facts(Destination::Callback, 4, false, None);
        assert_eq!((v.status, v.queue, v.next_attempt_at), (DeliveryStatus::Failed, QueueAction::DeadLetter, None));
    }

    #[test]
    fn a_client_failing_for_a_day_is_paused_and_the_message_dropped() {
        let v = facts(Destination::Callback, 2, false, Some(9 * DAY));
        assert_eq!((v.status, v.health, v.queue), (DeliveryStatus::Paused, Some(CallbackHealth::Paused), QueueAction::Ack));
        let not_yet = facts(Destination::Callback, 2, false, Some(9 * DAY + 1));
        assert_eq!(not_yet.status, DeliveryStatus::Retrying);
    }

    #[test]
    fn metrics_deliveries_are_never_paused_and_touch_no_client() {
        let v = facts(Destination::Metrics, 1, false, Some(0));
        assert_eq!((v.status, v.health), (DeliveryStatus::Retrying, None));
        assert_eq!(facts(Destination::Metrics, 1, true, None).health, None);
    }

    #[test]
    fn the_first_failure_starts_the_streak_rather_than_pausing() {
        assert!(!should_pause(None, 5 * DAY, DAY));
        assert!(should_pause(Some(4 * DAY), 5 * DAY, DAY));
        assert!(!should_pause(Some(6 * DAY), 5 * DAY, DAY), "a streak from the future (clock skew) never pauses");
    }
}
