//! Admin login throttling, as pure Rust. Two kinds of `LoginThrottle`
//! object decide each attempt before the password is compared:
//!
//! - **Per source** (an IPv4 address, or an IPv6 /64 — one subscriber's
//!   network, so rotating addresses inside it buys nothing): at most
//!   `MAX_FAILURES_PER_SOURCE` attempts that failed in the last
//!   `WINDOW_MS`; then that source waits until its oldest failure leaves the
//!   window.
//! - **For all sources** (`*`): once more than `GLOBAL_FREE_FAILURES`
//!   attempts failed in the window, attempts from sources that have already
//!   failed (or have an attempt in flight) are spaced out by a delay that
//!   doubles with every further ten failures, up to `MAX_GLOBAL_DELAY_MS`.
//!   A source with no failure is never delayed: an attack from many
//!   addresses cannot lock the operator out, it only slows the attacker.
//!
//! Every attempt is *taken* — counted as a failure — atomically inside the
//! object before the password is compared, so parallel guesses cannot all
//! pass one check; a successful login gives its attempt back.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const WINDOW_MS: u64 = 15 * 60 * 1000;
pub const MAX_FAILURES_PER_SOURCE: usize = 10;
pub const GLOBAL_FREE_FAILURES: usize = 10;
pub const MAX_GLOBAL_DELAY_MS: u64 = 60_000;
/// The object that counts every source's attempts.
pub const GLOBAL_SCOPE: &str = "*";

/// A call to a `LoginThrottle` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LoginCall {
    /// Count an attempt (as failed, until given back) if one is allowed now.
    /// `clean`: for the global object, whether the source had no failure.
    Take { attempt: String, now: u64, clean: Option<bool> },
    /// The attempt succeeded: it no longer counts.
    GiveBack { attempt: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum LoginVerdict {
    /// Counted. `clean`: the source had no failure or attempt in flight.
    Taken { clean: bool },
    Refused { retry_after_s: u64 },
    GivenBack,
}

/// A source's decision, from the times of its attempts still counted.
pub fn source_take(attempts: &[u64], now: u64) -> LoginVerdict {
    let recent: Vec<u64> = in_window(attempts, now);
    if recent.len() < MAX_FAILURES_PER_SOURCE {
        return LoginVerdict::Taken { clean: recent.is_empty() };
    }
    let oldest = recent.iter().min().copied().unwrap_or(now);
    LoginVerdict::Refused { retry_after_s: seconds_until(oldest.saturating_add(WINDOW_MS), now) }
}

/// The global decision: the verdict and, when an attempt from a source that
/// already failed is taken, the earliest time of the next such attempt.
pub fn global_take(attempts: &[u64], clean: bool, next_dirty_ms: u64, now: u64) -> (LoginVerdict, Option<u64>) {
    if clean {
        return (LoginVerdict::Taken { clean }, None);
    }
    if now < next_dirty_ms {
        return (LoginVerdict::Refused { retry_after_s: seconds_until(next_dirty_ms, now) }, None);
    }
    let delay = progressive_delay_ms(in_window(attempts, now).len());
    (LoginVerdict::Taken { clean }, Some(now.saturating_add(delay)))
}

/// No delay up to `GLOBAL_FREE_FAILURES` failures in the window; then one
/// second, doubling with each further ten failures, at most a minute.
pub fn progressive_delay_ms(failures: usize) -> u64 {
    if failures < GLOBAL_FREE_FAILURES {
        return 0;
    }
    let doublings = ((failures - GLOBAL_FREE_FAILURES) / 10).min(16) as u32;
    1000u64.saturating_mul(1 << doublings).min(MAX_GLOBAL_DELAY_MS)
}

fn in_window(attempts: &[u64], now: u64) -> Vec<u64> {
    attempts.iter().copied().filter(|t| t.saturating_add(WINDOW_MS) > now).collect()
}

fn seconds_until(at_ms: u64, now: u64) -> u64 {
    at_ms.saturating_sub(now).div_ceil(1000).max(1)
}

/// The object a request's source counts in: `ip:<IPv4>` or `ip6:<first
/// four groups>::/64`. An address we cannot read counts under `unknown`.
pub fn source_scope(connecting_ip: Option<&str>) -> String {
    match connecting_ip.map(str::trim).and_then(|ip| ip.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "ip:unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_refused_after_its_failures_until_the_window_passes() {
        let failures: Vec<u64> = (0..10).map(|i| 1_000 + i).collect();
        assert_eq!(source_take(&[], 2_000), LoginVerdict::Taken { clean: true });
        assert_eq!(source_take(&failures[..9], 2_000), LoginVerdict::Taken { clean: false });
        assert_eq!(source_take(&failures, 2_000), LoginVerdict::Refused { retry_after_s: 899 });
        assert_eq!(source_take(&failures, 1_000 + WINDOW_MS), LoginVerdict::Taken { clean: false });
        assert_eq!(source_take(&failures, 1_010 + WINDOW_MS), LoginVerdict::Taken { clean: true });
    }

    #[test]
    fn a_clean_source_is_never_delayed_by_failures_elsewhere() {
        let flood: Vec<u64> = (0..10_000).map(|i| 5_000 + i).collect();
        assert_eq!(global_take(&flood, true, u64::MAX, 20_000), (LoginVerdict::Taken { clean: true }, None));
    }

    #[test]
    fn sources_that_failed_are_spaced_out_progressively_under_attack() {
        let few: Vec<u64> = vec![1_000; 5];
        assert_eq!(global_take(&few, false, 0, 2_000), (LoginVerdict::Taken { clean: false }, Some(2_000)));
        let many: Vec<u64> = vec![1_000; 30];
        assert_eq!(global_take(&many, false, 0, 2_000), (LoginVerdict::Taken { clean: false }, Some(6_000)));
        assert_eq!(global_take(&many, false, 6_000, 2_500), (LoginVerdict::Refused { retry_after_s: 4 }, None));
    }

    #[test]
    fn the_delay_doubles_every_ten_failures_up_to_a_minute() {
        assert_eq!(progressive_delay_ms(9), 0);
        assert_eq!(progressive_delay_ms(10), 1_000);
        assert_eq!(progressive_delay_ms(19), 1_000);
        assert_eq!(progressive_delay_ms(20), 2_000);
        assert_eq!(progressive_delay_ms(60), 32_000);
        assert_eq!(progressive_delay_ms(70), MAX_GLOBAL_DELAY_MS);
        assert_eq!(progressive_delay_ms(usize::MAX), MAX_GLOBAL_DELAY_MS);
    }

    #[test]
    fn ipv6_sources_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(source_scope(Some("2001:db8:1:2::1")), "ip6:2001:db8:1:2::/64");
        assert_eq!(source_scope(Some("2001:db8:1:2:ffff:ffff:ffff:ffff")), "ip6:2001:db8:1:2::/64");
        assert_ne!(source_scope(Some("2001:db8:1:3::1")), source_scope(Some("2001:db8:1:2::1")));
        assert_eq!(source_scope(Some("::ffff:192.0.2.7")), "ip:192.0.2.7");
        assert_eq!(source_scope(Some(" 192.0.2.7 ")), "ip:192.0.2.7");
        assert_eq!(source_scope(Some("not an address")), "ip:unknown");
        assert_eq!(source_scope(None), "ip:unknown");
    }
}
