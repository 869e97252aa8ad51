//! Usage read from the daily rollups.

use super::all;
use crate::args;
use crate::error::ApiResult;
use serde::Deserialize;
use worker::D1Database;

#[derive(Debug, Deserialize)]
pub struct MonthlyUsage {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub active: i64,
    pub usage_limit: u64,
    pub successful: u64,
    pub failed: u64,
}

/// Every client, with its generations in `month` (YYYY-MM), from the monthly rollup.
pub async fn monthly_usage(db: &D1Database, month: &str) -> ApiResult<Vec<MonthlyUsage>> {
    all(
        db,
        "SELECT c.id, c.name, c.email, c.active, c.usage_limit,
                COALESCE(u.success_count, 0) AS successful, COALESCE(u.error_count, 0) AS failed
         FROM clients c LEFT JOIN usage_monthly u ON u.client_id = c.id AND u.month = ?1
         ORDER BY c.name, c.id",
        args![month],
    )
    .await
}
