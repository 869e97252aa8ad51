//! Limits on browser traffic (the widget, with a publishable key or a widget
//! session token), on top of the shop's monthly quota and concurrency cap:
//! a per-client widget rate, separate from the shop's server traffic, and a
//! per-shopper rate and daily cap, so one abusive visitor cannot use up the
//! shop's month. Pure: the object stores the buckets and counts.

use super::bucket::{Bucket, Rate};
use crate::domain::time::DAY_MS;
use serde::{Deserialize, Serialize};

pub const DEFAULT_WIDGET_RATE_PER_MINUTE: u64 = 30;
pub const DEFAULT_SHOPPER_RATE_PER_MINUTE: u64 = 5;
pub const DEFAULT_SHOPPER_DAILY_LIMIT: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetLimits {
    pub widget_rate_limit_per_minute: u64,
    pub shopper_rate_limit_per_minute: u64,
    /// Generations one shopper may start per UTC day.
    pub shopper_daily_limit: u64,
}

impl Default for WidgetLimits {
    fn default() -> Self {
        Self {
            widget_rate_limit_per_minute: DEFAULT_WIDGET_RATE_PER_MINUTE,
            shopper_rate_limit_per_minute: DEFAULT_SHOPPER_RATE_PER_MINUTE,
            shopper_daily_limit: DEFAULT_SHOPPER_DAILY_LIMIT,
        }
    }
}

/// One shopper's usage: today's attempts and their rate bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShopperUsage {
    /// Days since the epoch (UTC) that `attempts` counts.
    pub day: u64,
    pub attempts: u64,
    pub bucket: Option<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetRefusal {
    WidgetRateLimited { retry_after_s: u64 },
    ShopperRateLimited { retry_after_s: u64 },
    ShopperDailyLimit { retry_after_s: u64 },
}

/// Takes a widget token and a shopper token and counts the attempt — all
/// three or none. On success the new widget bucket and shopper usage are
/// returned for the object to store.
pub fn take(limits: WidgetLimits, widget: Option<Bucket>, shopper: &ShopperUsage, now: u64) -> Result<(Bucket, ShopperUsage), WidgetRefusal> {
    let widget_rate = Rate::new(limits.widget_rate_limit_per_minute, None);
    let shopper_rate = Rate::new(limits.shopper_rate_limit_per_minute, None);
    let today = now / DAY_MS;
    let attempts = if shopper.day == today { shopper.attempts } else { 0 };
    if attempts >= limits.shopper_daily_limit {
        let retry_after_s = ((today + 1) * DAY_MS).saturating_sub(now).div_ceil(1000).max(1);
        return Err(WidgetRefusal::ShopperDailyLimit { retry_after_s });
    }
    let mut shopper_bucket = Bucket::refilled(shopper.bucket, shopper_rate, now);
    shopper_bucket.take(shopper_rate).map_err(|retry_after_s| WidgetRefusal::ShopperRateLimited { retry_after_s })?;
    let mut widget_bucket = Bucket::refilled(widget, widget_rate, now);
    widget_bucket.take(widget_rate).map_err(|retry_after_s| WidgetRefusal::WidgetRateLimited { retry_after_s })?;
    Ok((widget_bucket, ShopperUsage { day: today, attempts: attempts + 1, bucket: Some(shopper_bucket) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: u64 = 1_801_396_800_000; // 2027-01-31T12:00:00Z

    fn limits(widget: u64, shopper: u64, daily: u64) -> WidgetLimits {
        WidgetLimits { widget_rate_limit_per_minute: widget, shopper_rate_limit_per_minute: shopper, shopper_daily_limit: daily }
    }

    #[test]
    fn a_shopper_gets_their_rate_then_waits() {
        let (mut widget, mut usage) = (None, ShopperUsage::default());
        for _ in 0..3 {
            let (w, u) = take(limits(100, 3, 100), widget, &usage, NOON).unwrap();
            (widget, usage) = (Some(w), u);
        }
        assert_eq!(take(limits(100, 3, 100), widget, &usage, NOON), Err(WidgetRefusal::ShopperRateLimited { retry_after_s: 20 }));
        assert!(take(limits(100, 3, 100), widget, &ShopperUsage::default(), NOON).is_ok(), "another shopper is not affected");
    }

    #[test]
    fn the_widget_rate_is_shared_by_all_shoppers() {
        let mut widget = None;
        for i in 0..2 {
            let shopper = ShopperUsage { day: 0, attempts: i, bucket: None };
            widget = Some(take(limits(2, 10, 100), widget, &shopper, NOON).unwrap().0);
        }
        assert_eq!(take(limits(2, 10, 100), widget, &ShopperUsage::default(), NOON), Err(WidgetRefusal::WidgetRateLimited { retry_after_s: 30 }));
    }

    #[test]
    fn the_daily_cap_counts_attempts_until_midnight_utc() {
        let usage = ShopperUsage { day: NOON / DAY_MS, attempts: 2, bucket: None };
        assert_eq!(take(limits(100, 100, 2), None, &usage, NOON), Err(WidgetRefusal::ShopperDailyLimit { retry_after_s: 12 * 3600 }));
        let tomorrow = NOON + 12 * 3600 * 1000;
        let (_, next) = take(limits(100, 100, 2), None, &usage, tomorrow).unwrap();
        assert_eq!((next.day, next.attempts), (tomorrow / DAY_MS, 1));
    }

    #[test]
    fn a_refusal_takes_nothing() {
        let usage = ShopperUsage { day: NOON / DAY_MS, attempts: 0, bucket: None };
        let rate = Rate::new(1, Some(1));
        let mut drained = Bucket::refilled(None, rate, NOON);
        while drained.take(rate).is_ok() {}
        let widget = Some(drained);
        assert!(matches!(take(limits(1, 10, 10), widget, &usage, NOON), Err(WidgetRefusal::WidgetRateLimited { .. })));
        // `take` returns new state only on success: the caller stores nothing on a refusal.
    }
}
