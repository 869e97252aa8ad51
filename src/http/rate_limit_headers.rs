//! Rate-limit response headers, both the widespread `X-RateLimit-*` trio and
//! the IETF `RateLimit-Policy` / `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers: `q` quota, `w` window, `r` remaining,
//! `t` seconds until reset).

use crate::limiter::protocol::LimitStatus;

pub fn rate_limit_headers(l: &LimitStatus, now: u64) -> Vec<(&'static str, String)> {
    let month_reset_s = l.quota_reset_at.saturating_sub(now).div_ceil(1000);
    vec![
        ("x-ratelimit-limit", l.rate_limit_per_minute.to_string()),
        ("x-ratelimit-remaining", l.rate_remaining.to_string()),
        ("x-ratelimit-reset", l.rate_reset_s.to_string()),
        (
            "ratelimit-policy",
            format!("\"minute\";q={};w=60, \"month\";q={};w={}", l.rate_burst, l.quota_limit, month_window_s(l)),
        ),
        (
            "ratelimit",
            format!("\"minute\";r={};t={}, \"month\";r={};t={month_reset_s}", l.rate_remaining, l.rate_reset_s, l.quota_remaining),
        ),
    ]
}

/// The length of the quota's calendar month, in seconds.
fn month_window_s(l: &LimitStatus) -> u64 {
    crate::domain::time::month_bounds(&l.month).map_or(0, |(start, end)| (end - start) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_both_the_minute_and_the_month() {
        let l = LimitStatus {
            rate_limit_per_minute: 60,
            rate_burst: 60,
            rate_remaining: 59,
            rate_reset_s: 1,
            month: "2027-02".into(),
            quota_limit: 5000,
            quota_used: 10,
            quota_reserved: 1,
            quota_remaining: 4989,
            quota_reset_at: 1_801_440_000_000 + 28 * 86_400_000,
            in_flight: 1,
            max_concurrent: 4,
        };
        let h: std::collections::HashMap<_, _> = rate_limit_headers(&l, 1_801_440_000_000).into_iter().collect();
        assert_eq!(h["x-ratelimit-limit"], "60");
        assert_eq!(h["x-ratelimit-remaining"], "59");
        assert_eq!(h["ratelimit-policy"], "\"minute\";q=60;w=60, \"month\";q=5000;w=2419200");
        assert_eq!(h["ratelimit"], "\"minute\";r=59;t=1, \"month\";r=4989;t=2419200");
    }
}
