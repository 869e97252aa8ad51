//! `GET /admin/usage?month=YYYY-MM`: every client's usage in a month, for
//! invoicing. JSON, or CSV with `Accept: text/csv` or `?format=csv`.

use crate::auth::AdminSession;
use crate::domain::csv;
use crate::domain::time::{month_bounds, month_key};
use crate::error::{ApiError, ApiResult};
use crate::http::respond::json;
use crate::request::{header, query_pairs, query_value};
use crate::state::Ctx;
use crate::store::usage::{monthly_usage, MonthlyUsage};
use serde_json::json;
use worker::{Request, Response};

pub async fn month(req: &Request, ctx: &Ctx, _admin: &AdminSession) -> ApiResult<Response> {
    let query = query_pairs(req)?;
    let month = query_value(&query, "month").map_or_else(|| month_key(ctx.now), str::to_string);
    month_bounds(&month).ok_or_else(|| ApiError::bad_request("invalid_query", "`month` must look like 2026-11"))?;
    let rows = monthly_usage(&ctx.db, &month).await?;
    let wants_csv = query_value(&query, "format") == Some("csv")
        || header(req, "accept").is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return csv_response(&month, &rows);
    }
    let clients: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "client_id": r.id, "name": r.name, "email": r.email, "active": r.active != 0,
                "successful_generations": r.successful, "failed_generations": r.failed, "usage_limit": r.usage_limit,
            })
        })
        .collect();
    let total: u64 = rows.iter().map(|r| r.successful).sum();
    json(200, &json!({ "month": month, "total_successful_generations": total, "clients": clients }))
}

fn csv_response(month: &str, rows: &[MonthlyUsage]) -> ApiResult<Response> {
    let mut body = csv::row(&["month", "client_id", "name", "email", "successful_generations", "failed_generations", "usage_limit"].map(String::from));
    for r in rows {
        body.push_str(&csv::row(&[
            month.to_string(),
            r.id.clone(),
            r.name.clone(),
            r.email.clone().unwrap_or_default(),
            r.successful.to_string(),
            r.failed.to_string(),
            r.usage_limit.to_string(),
        ]));
    }
    let mut response = Response::from_bytes(body.into_bytes())?;
    let headers = response.headers_mut();
    headers.set("content-type", "text/csv; charset=utf-8")?;
    headers.set("content-disposition", &format!("attachment; filename=\"usage-{month}.csv\""))?;
    Ok(response)
}
