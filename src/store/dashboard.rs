//! The aggregates behind the admin dashboard. Totals, charts and the busiest
//! clients read rollups maintained on write (`usage_totals_daily`,
//! `usage_monthly`, `usage_daily`), never a scan of `generations`; percentiles
//! and recent events read one client's recent rows through its
//! `(client_id, created_at)` index.

use super::generations::{GenerationRow, COLUMNS};
use super::{batch_of, first_row, rows, statement};
use crate::args;
use crate::domain::ids::ClientId;
use crate::error::ApiResult;
use serde::{Deserialize, Serialize};
use worker::D1Database;

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Totals {
    pub success: Option<u64>,
    pub error: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct BusyClient {
    pub client_id: String,
    pub name: String,
    pub success: u64,
    pub error: u64,
}

pub struct Overview {
    pub today: Totals,
    pub month: Totals,
    pub busiest: Vec<BusyClient>,
    pub clients: u64,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

/// Today's and this month's totals (at most 31 rows of the per-day totals),
/// the ten busiest clients of the month (ten entries of an index), and the
/// client count, in one round trip.
pub async fn overview(db: &D1Database, today: u64, month_start_day: u64, month: &str) -> ApiResult<Overview> {
    let totals = "SELECT SUM(success_count) AS success, SUM(error_count) AS error FROM usage_totals_daily WHERE day >= ?1 AND day <= ?2";
    let [today, month_totals, busiest, clients] = batch_of(
        db,
        [
            statement(db, totals, args![today, today])?,
            statement(db, totals, args![month_start_day, today])?,
            statement(
                db,
                "SELECT u.client_id, c.name, u.success_count AS success, u.error_count AS error
                 FROM usage_monthly u JOIN clients c ON c.id = u.client_id
                 WHERE u.month = ?1 ORDER BY u.success_count + u.error_count DESC LIMIT 10",
                args![month],
            )?,
            statement(db, "SELECT COUNT(*) AS n FROM clients WHERE deleted_at IS NULL", args![])?,
        ],
    )
    .await?;
    Ok(Overview {
        today: first_row(&today)?.unwrap_or_default(),
        month: first_row(&month_totals)?.unwrap_or_default(),
        busiest: rows(&busiest)?,
        clients: first_row::<Count>(&clients)?.map_or(0, |c| c.n),
    })
}

#[derive(Debug, Deserialize, Serialize)]
pub struct DailyRow {
    pub day: u64,
    pub model: String,
    pub success: u64,
    pub error: u64,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub n: Option<u64>,
}

pub struct ClientStats {
    pub daily: Vec<DailyRow>,
    pub durations: Percentiles,
}

/// One client's generations per day and model since `from_day`, and the
/// median and 95th percentile duration of its successes since `from_ms`.
pub async fn client_stats(db: &D1Database, client: &ClientId, from_day: u64, from_ms: u64) -> ApiResult<ClientStats> {
    let id = client.as_str();
    let [daily, durations] = batch_of(
        db,
        [
            statement(
                db,
                "SELECT day, model, success_count AS success, error_count AS error FROM usage_daily
                 WHERE client_id = ?1 AND day >= ?2 ORDER BY day, model",
                args![id, from_day],
            )?,
            statement(
                db,
                "WITH d AS (
                   SELECT duration_ms, ROW_NUMBER() OVER (ORDER BY duration_ms) AS rn, COUNT(*) OVER () AS n
                   FROM generations WHERE client_id = ?1 AND created_at >= ?2 AND status = 'success')
                 SELECT MIN(CASE WHEN rn >= 0.5 * n THEN duration_ms END) AS p50,
                        MIN(CASE WHEN rn >= 0.95 * n THEN duration_ms END) AS p95,
                        MAX(n) AS n
                 FROM d",
                args![id, from_ms],
            )?,
        ],
    )
    .await?;
    Ok(ClientStats { daily: rows(&daily)?, durations: first_row(&durations)?.unwrap_or_default() })
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ClientActivity {
    pub client_id: String,
    pub used_this_month: Option<u64>,
    pub failed_this_month: Option<u64>,
    pub last_generation_at: Option<u64>,
}

/// This month's usage and the last generation time of a page of clients.
pub async fn activity_of(db: &D1Database, ids: &[String], month: &str) -> ApiResult<Vec<ClientActivity>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    super::all(
        db,
        "SELECT j.value AS client_id, u.success_count AS used_this_month, u.error_count AS failed_this_month,
                (SELECT MAX(created_at) FROM generations g WHERE g.client_id = j.value) AS last_generation_at
         FROM json_each(?1) j LEFT JOIN usage_monthly u ON u.client_id = j.value AND u.month = ?2",
        args![serde_json::to_string(ids)?, month],
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ModelTotals {
    pub model: String,
    pub success: u64,
    pub error: u64,
}

pub struct ClientMetrics {
    /// All-time successes and errors, summed over `by_model`.
    pub totals: Totals,
    pub by_model: Vec<ModelTotals>,
    pub last_generation_at: Option<u64>,
    pub recent: Vec<GenerationRow>,
}

/// Totals from the rollups, the last generation and the 50 most recent events:
/// index reads in one round trip.
pub async fn client_metrics(db: &D1Database, client: &ClientId) -> ApiResult<ClientMetrics> {
    let id = client.as_str();
    let [by_model, recent] = batch_of(
        db,
        [
            statement(
                db,
                "SELECT model, SUM(success_count) AS success, SUM(error_count) AS error
                 FROM usage_daily WHERE client_id = ?1 GROUP BY model ORDER BY model",
                args![id],
            )?,
            statement(db, &format!("SELECT {COLUMNS} FROM generations WHERE client_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 50"), args![id])?,
        ],
    )
    .await?;
    let by_model: Vec<ModelTotals> = rows(&by_model)?;
    let recent: Vec<GenerationRow> = rows(&recent)?;
    let totals = Totals {
        success: Some(by_model.iter().map(|m| m.success).sum()),
        error: Some(by_model.iter().map(|m| m.error).sum()),
    };
    Ok(ClientMetrics { totals, by_model, last_generation_at: recent.first().map(|g| g.created_at), recent })
}

#[derive(Debug, Deserialize)]
pub struct ShopperActivity {
    pub shopper_id: String,
    pub generations: u64,
    pub successful: u64,
    pub last_at: u64,
}

pub struct Shoppers {
    /// Distinct shoppers with a generation since the cutoff.
    pub count: u64,
    /// Their generations, in all.
    pub generations: u64,
    /// The twenty with the most generations.
    pub busiest: Vec<ShopperActivity>,
}

#[derive(Deserialize)]
struct ShopperTotals {
    shoppers: Option<u64>,
    generations: Option<u64>,
}

/// One client's shoppers since `since_ms`, through its `(client_id, shopper_id, created_at)` index.
pub async fn shoppers_of(db: &D1Database, client: &ClientId, since_ms: u64) -> ApiResult<Shoppers> {
    let id = client.as_str();
    let [totals, busiest] = batch_of(
        db,
        [
            statement(
                db,
                "SELECT COUNT(DISTINCT shopper_id) AS shoppers, COUNT(*) AS generations FROM generations
                 WHERE client_id = ?1 AND shopper_id IS NOT NULL AND created_at >= ?2",
                args![id, since_ms],
            )?,
            statement(
                db,
                "SELECT shopper_id, COUNT(*) AS generations, SUM(status = 'success') AS successful, MAX(created_at) AS last_at
                 FROM generations WHERE client_id = ?1 AND shopper_id IS NOT NULL AND created_at >= ?2
                 GROUP BY shopper_id ORDER BY generations DESC, shopper_id LIMIT 20",
                args![id, since_ms],
            )?,
        ],
    )
    .await?;
    let totals: Option<ShopperTotals> = first_row(&totals)?;
    Ok(Shoppers {
        count: totals.as_ref().and_then(|t| t.shoppers).unwrap_or(0),
        generations: totals.and_then(|t| t.generations).unwrap_or(0),
        busiest: rows(&busiest)?,
    })
}
