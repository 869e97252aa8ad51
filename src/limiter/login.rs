//! Admin login throttling, as pure Rust: failures within a sliding window.

/// Whether a login may be tried given the failures recorded so far; when
/// not, the seconds until the oldest failure leaves the window.
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

    #[test]
    fn login_failures_lock_out_for_the_rest_of_the_window() {
        let window = 15 * 60 * 1000;
        let failures: Vec<u64> = (0..10).map(|i| 1_000 + i).collect();
        assert_eq!(login_allowed(&failures[..9], 2_000, window, 10), Ok(()));
        assert_eq!(login_allowed(&failures, 2_000, window, 10), Err(899));
        assert_eq!(login_allowed(&failures, 1_000 + window, window, 10), Ok(()));
    }
}
