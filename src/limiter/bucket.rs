//! The rate limit: a token bucket of `burst` tokens refilled continuously at
//! `per_minute` tokens a minute. This is the only file to change to use
//! another algorithm; the rest of the limiter sees `Bucket` and `Rate`.

use serde::{Deserialize, Serialize};

/// A client's rate, from its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_minute: u64,
    /// Tokens a full bucket holds (the most requests at once after a quiet spell).
    pub burst: f64,
}

impl Rate {
    /// `burst` defaults to the per-minute figure; both are at least 1.
    pub fn new(per_minute: u64, burst: Option<u64>) -> Self {
        Self { per_minute: per_minute.max(1), burst: burst.unwrap_or(per_minute).max(1) as f64 }
    }

    fn per_ms(&self) -> f64 {
        self.per_minute as f64 / 60_000.0
    }
}

/// The bucket's state. Its fields are this file's business: storage keeps
/// it as the opaque text `stored` gives, so another algorithm (with other
/// state) changes nothing outside this file — it reads this format once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

impl Bucket {
    /// How storage keeps it.
    pub fn stored(&self) -> String {
        // A struct of two numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What `stored` gave; `None` for anything else (the bucket then starts
    /// full, as a new client's does).
    pub fn from_stored(raw: &str) -> Option<Bucket> {
        serde_json::from_str(raw).ok()
    }

    /// The first releases' storage columns (`tokens`, `updated_ms`), which
    /// objects created before `stored` still hold until their next write.
    pub fn from_columns(tokens: f64, updated_ms: u64) -> Bucket {
        Bucket { tokens, updated_ms }
    }

    /// The bucket as of `now`: a new client starts full; a clock that steps
    /// back (tests, clock skew) refills nothing.
    pub fn refilled(previous: Option<Bucket>, rate: Rate, now: u64) -> Bucket {
        match previous {
            None => Bucket { tokens: rate.burst, updated_ms: now },
            Some(b) => {
                let elapsed = now.saturating_sub(b.updated_ms) as f64;
                Bucket { tokens: (b.tokens + elapsed * rate.per_ms()).min(rate.burst), updated_ms: now.max(b.updated_ms) }
            }
        }
    }

    /// Takes one token, or says how many seconds until one is there.
    pub fn take(&mut self, rate: Rate) -> Result<(), u64> {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err((((1.0 - self.tokens) / rate.per_ms()) / 1000.0).ceil().max(1.0) as u64)
    }

    /// Whole tokens left.
    pub fn remaining(&self) -> u64 {
        self.tokens.max(0.0).floor() as u64
    }

    /// Seconds until the bucket is full again.
    pub fn reset_s(&self, rate: Rate) -> u64 {
        ((rate.burst - self.tokens).max(0.0) / rate.per_ms() / 1000.0).ceil() as u64
    }

    /// A changed burst moves the bucket by the difference, so raising a limit
    /// helps at once and lowering it bites at once.
    pub fn rebase(&mut self, old: Rate, new: Rate) {
        self.tokens = (self.tokens + (new.burst - old.burst)).clamp(0.0, new.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_bucket_is_full_and_refills_at_the_rate() {
        let rate = Rate::new(6, None);
        let mut b = Bucket::refilled(None, rate, 0);
        for _ in 0..6 {
            assert_eq!(b.take(rate), Ok(()));
        }
        assert_eq!(b.take(rate), Err(10), "6 a minute: one token every 10 s");
        let b = Bucket::refilled(Some(b), rate, 10_000);
        assert_eq!(b.remaining(), 1);
        assert_eq!(b.reset_s(rate), 50);
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing() {
        let rate = Rate::new(60, Some(2));
        let b = Bucket { tokens: 0.0, updated_ms: 10_000 };
        assert_eq!(Bucket::refilled(Some(b), rate, 5_000), b);
    }

    #[test]
    fn burst_changes_move_the_bucket_by_the_difference() {
        let mut b = Bucket { tokens: 1.0, updated_ms: 0 };
        b.rebase(Rate::new(10, None), Rate::new(100, None));
        assert_eq!(b.tokens, 91.0);
        b.rebase(Rate::new(100, None), Rate::new(1, None));
        assert_eq!(b.tokens, 0.0);
    }

    #[test]
    fn storage_keeps_the_bucket_exactly() {
        let rate = Rate::new(7, Some(3));
        let mut b = Bucket::refilled(None, rate, 1_000);
        b.take(rate).unwrap();
        let b = Bucket::refilled(Some(b), rate, 1_777);
        assert_eq!(Bucket::from_stored(&b.stored()), Some(b));
        assert_eq!(Bucket::from_stored("not a bucket"), None);
        assert_eq!(Bucket::from_columns(2.5, 9), Bucket { tokens: 2.5, updated_ms: 9 });
    }
}
