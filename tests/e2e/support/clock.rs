//! The test clock: with `TEST_CLOCK=enabled`, a request's `x-test-now`
//! header (ms since the epoch) is the worker's idea of now. Limits are tested
//! just inside and just outside each boundary by moving this clock.

pub const SECOND: u64 = 1000;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;
pub const DAY: u64 = 24 * HOUR;

/// Real time, in ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The instant `rfc3339` names, in ms since the epoch.
pub fn at(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 time").timestamp_millis() as u64
}

/// The header value for `ms`.
pub fn header(ms: u64) -> String {
    ms.to_string()
}
