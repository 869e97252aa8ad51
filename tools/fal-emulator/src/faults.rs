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
        let mut faults = self.0.lock().unwrap();
        let index = faults.iter().position(|f| body.contains(&f.pattern))?;
        let fault = faults[index].clone();
        match &mut faults[index].times {
            Some(1) => {
                faults.remove(index);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Some(fault)
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
