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

/// Every client, with its generations between two day numbers (end excluded).
pub async fn monthly_usage(db: &D1Database, from_day: u64, to_day: u64) -> ApiResult<Vec<MonthlyUsage>> {
    all(
        db,
        "SELECT c.id, c.name, c.email, c.active, c.usage_limit,
                COALESCE(SUM(u.success_count), 0) AS successful, COALESCE(SUM(u.error_count), 0) AS failed
         FROM clients c LEFT JOIN usage_daily u ON u.client_id = c.id AND u.day >= ?1 AND u.day < ?2
         GROUP BY c.id ORDER BY c.name, c.id",
        args![from_day, to_day],
    )
    .await
}
