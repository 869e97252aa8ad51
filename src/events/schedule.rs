//! When to try again: exponential backoff from the configured delays
//! (`EVENT_RETRY_DELAYS`), each spread by ±20 % jitter so that the events of
//! an endpoint that came back do not all arrive in the same second.

use crate::config::MAX_QUEUE_DELAY_S;

/// How far each delay may move, as a fraction of it.
pub const JITTER: f64 = 0.2;

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again after this many seconds.
    RetryIn(u32),
    /// That was the last attempt.
    GiveUp,
}

pub struct Schedule<'a> {
    delays_s: &'a [u32],
}

impl<'a> Schedule<'a> {
    pub fn new(delays_s: &'a [u32]) -> Self {
        Self { delays_s }
    }

    /// Attempts in all: the first, then one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.delays_s.len() as u32 + 1
    }

    /// After the `attempt`-th attempt (1-based) failed; `unit` is a random
    /// number in [0, 1) that places the delay within its jitter.
    pub fn after_failure(&self, attempt: u32, unit: f64) -> Next {
        let index = attempt.saturating_sub(1) as usize;
        match self.delays_s.get(index) {
            Some(&delay) => Next::RetryIn(jittered(delay, unit)),
            None => Next::GiveUp,
        }
    }
}

/// `delay_s` moved by up to ±`JITTER` of itself, rounded to whole seconds
/// (the queue's unit), never below 1 s nor above the queue's maximum.
pub fn jittered(delay_s: u32, unit: f64) -> u32 {
    let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.5 };
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit;
    let seconds = (f64::from(delay_s) * factor).round();
    (seconds as u32).clamp(1, MAX_QUEUE_DELAY_S)
}

/// A uniform random number in [0, 1) from the platform's generator.
pub fn random_unit() -> f64 {
    let bytes = crate::domain::ids::random_bytes::<4>();
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_EVENT_RETRY_DELAYS_S;

    #[test]
    fn each_failed_attempt_waits_for_the_next_delay_until_the_schedule_runs_out() {
        let schedule = Schedule::new(&DEFAULT_EVENT_RETRY_DELAYS_S);
        assert_eq!(schedule.max_attempts(), 9);
        let middle: Vec<Next> = (1..=9).map(|n| schedule.after_failure(n, 0.5)).collect();
        let expected: Vec<Next> = DEFAULT_EVENT_RETRY_DELAYS_S.iter().map(|&d| Next::RetryIn(d)).chain([Next::GiveUp]).collect();
        assert_eq!(middle, expected);
        assert_eq!(schedule.after_failure(42, 0.5), Next::GiveUp);
    }

    #[test]
    fn jitter_spreads_a_delay_by_at_most_a_fifth_either_way() {
        assert_eq!(jittered(600, 0.0), 480);
        assert_eq!(jittered(600, 0.5), 600);
        assert_eq!(jittered(600, 0.999_999), 720);
        for i in 0..100 {
            let d = jittered(1800, f64::from(i) / 100.0);
            assert!((1440..=2160).contains(&d), "{d}");
        }
    }

    #[test]
    fn jitter_never_goes_below_a_second_nor_above_the_queue_maximum() {
        assert_eq!(jittered(1, 0.0), 1);
        assert_eq!(jittered(MAX_QUEUE_DELAY_S, 1.0), MAX_QUEUE_DELAY_S);
        assert_eq!(jittered(10, f64::NAN), 10);
    }

    #[test]
    fn random_units_stay_in_the_unit_interval() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
