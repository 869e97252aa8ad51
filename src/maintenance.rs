//! The scheduled (cron) handler: housekeeping that must not wait for traffic.

use crate::config::Config;
use crate::domain::time::DAY_MS;
use crate::error::ApiResult;
use crate::results::retention;
use crate::store;
use crate::store::results::ResultBucket;
use worker::D1Database;

/// Runs every task; one failing does not stop the others. Idempotency keys
/// are not here: they live in each client's limiter object, which drops
/// them a day after use whenever it is next asked.
pub async fn run(db: &D1Database, config: &Config, now: u64) {
    report("purge expired admin sessions", store::sessions::purge_expired(db, now, config.session_idle_timeout_ms).await);
    let cutoff = now.saturating_sub(config.retention_days * DAY_MS);
    report("delete generations past retention", store::generations::delete_older_than(db, cutoff).await);
    let log_cutoff = now.saturating_sub(config.delivery_log_days * DAY_MS);
    report("delete delivery log past retention", store::deliveries::delete_older_than(db, log_cutoff).await);
}

/// Our copies of result images: retry failed copies while FAL still has the
/// file, give up those it no longer has, delete images past retention, and
/// continue erasing deleted clients.
pub async fn keep_results(db: &D1Database, bucket: &ResultBucket, config: &Config, now: u64) {
    report("retry image copies", retention::retry_copies(db, bucket, config, now).await);
    report("give up image copies FAL no longer has", retention::give_up_copies(db, config, now).await);
    report("delete images past retention", retention::delete_past_retention(db, bucket, config, now).await);
    report("erase deleted clients' images", retention::erase_deleted_clients(db, bucket, now).await);
}

fn report(task: &str, result: ApiResult<u64>) {
    match result {
        Ok(n) => worker::console_log!("maintenance: {task}: {n} row(s)"),
        Err(e) => worker::console_error!("maintenance: {task} failed: {e:?}"),
    }
}
