//! Faults the emulator can be told to produce. A fault applies to requests
//! whose body contains its `match` string, so tests sharing one emulator each
//! fail only their own requests (they put a unique marker in an image URL).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// HTTP 500 with a FAL-shaped `{"detail": ...}`.
    Error500,
    /// HTTP 422 with FAL's validation-error list.
    Error422,
    /// HTTP 401, as FAL answers a bad key.
    Unauthorized,
    /// HTTP 429.
    RateLimited,
    /// Never answer (well, not for an hour).
    Hang,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Answer normally after `delay_ms`.
    Slow,
    /// Queue: the request completes but its webhook is never sent.
    WebhookNever,
    /// Queue: the webhook is delivered twice.
    WebhookTwice,
    /// Queue: the webhook is delivered `delay_ms` after completion.
    WebhookLate,
    /// Queue: the webhook is signed with a key that is not in the JWKS.
    WebhookBadSignature,
    /// Queue: the status says COMPLETED, but the result is a FAL error.
    ErrorAfterCompleted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(rename = "match")]
    pub pattern: String,
    pub mode: FaultMode,
    #[serde(default)]
    pub delay_ms: u64,
    /// How many requests it applies to; unlimited when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

#[derive(Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    pub fn add(&self, fault: Fault) {
        self.0.lock().unwrap().push(fault);
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// The first fault matching `body`, consuming one of its uses.
    pub fn take(&self, body: &str) -> Option<Fault> {
        self.take_all(body).into_iter().next()
    }

    /// Every fault matching `body` (a queued request can combine, say, a
    /// failed result with a lost webhook), consuming one use of each.
    pub fn take_all(&self, body: &str) -> Vec<Fault> {
        let mut faults = self.0.lock().unwrap();
        let taken: Vec<Fault> = faults.iter().filter(|f| body.contains(&f.pattern)).cloned().collect();
        for f in faults.iter_mut().filter(|f| body.contains(&f.pattern)) {
            if let Some(n) = &mut f.times {
                *n -= 1;
            }
        }
        faults.retain(|f| f.times != Some(0));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_by_substring_and_run_out() {
        let faults = Faults::default();
        faults.add(Fault { pattern: "t1".into(), mode: FaultMode::Error500, delay_ms: 0, times: Some(1) });
        assert!(faults.take("nothing here").is_none());
        assert_eq!(faults.take("url?t1").unwrap().mode, FaultMode::Error500);
        assert!(faults.take("url?t1").is_none());
    }
}
