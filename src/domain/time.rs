//! Calendar arithmetic on milliseconds since the epoch (UTC).

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

pub const DAY_MS: u64 = 24 * 3600 * 1000;

pub fn to_rfc3339(ms: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_rfc3339(s: &str) -> Option<u64> {
    DateTime::parse_from_rfc3339(s).ok().and_then(|d| u64::try_from(d.timestamp_millis()).ok())
}

/// Days since 1970-01-01, the key of the daily rollups.
pub fn day_number(ms: u64) -> u64 {
    ms / DAY_MS
}

/// `YYYY-MM` of an instant.
pub fn month_key(ms: u64) -> String {
    let d = DateTime::<Utc>::from_timestamp_millis(ms as i64).unwrap_or_default();
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The first instant of the month `key` (`YYYY-MM`) and of the month after it.
pub fn month_bounds(key: &str) -> Option<(u64, u64)> {
    let (y, m) = key.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (year, month): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let start = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1)? } else { NaiveDate::from_ymd_opt(year, month + 1, 1)? };
    let ms = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis() as u64);
    Some((ms(start)?, ms(next)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_rfc3339() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_rfc3339("2026-11-29T10:00:00Z"), Some(1_795_946_400_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn month_keys_and_bounds_cover_december() {
        let (start, end) = month_bounds("2026-12").unwrap();
        assert_eq!(month_key(start), "2026-12");
        assert_eq!(month_key(end - 1), "2026-12");
        assert_eq!(month_key(end), "2027-01");
        assert_eq!(month_bounds("2026-13"), None);
        assert_eq!(month_bounds("26-1"), None);
    }
}
