//! The scheduled (cron) handler: housekeeping that must not wait for traffic.

use crate::config::Config;
use crate::error::ApiResult;
use crate::store;
use worker::D1Database;

/// Runs every task; one failing does not stop the others.
pub async fn run(db: &D1Database, config: &Config, now: u64) {
    report("purge expired admin sessions", store::sessions::purge_expired(db, now, config.session_idle_timeout_ms).await);
}

fn report(task: &str, result: ApiResult<u64>) {
    match result {
        Ok(n) => worker::console_log!("maintenance: {task}: {n} row(s)"),
        Err(e) => worker::console_error!("maintenance: {task} failed: {e:?}"),
    }
}
