//! `GET /admin/clients/{id}/metrics` and `GET /admin/generations`.

use super::clients::parse_client_id;
use crate::auth::AdminSession;
use crate::domain::generation::Model;
use crate::domain::shopper::ShopperId;
use crate::domain::time::{parse_rfc3339, to_rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::http::generations::{admin_view, page_of};
use crate::http::paging::page_params;
use crate::http::respond::json;
use crate::request::{query_pairs, query_value};
use crate::results::links;
use crate::state::Ctx;
use crate::store::{clients, dashboard, generations};
use serde_json::{json, Map, Value};
use worker::{Request, Response};

pub async fn client_metrics(ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    let row = clients::get(&ctx.db, &client).await?.ok_or_else(|| ApiError::not_found("no such client"))?;
    let metrics = dashboard::client_metrics(&ctx.db, &client).await?;
    let (success, error) = (metrics.totals.success.unwrap_or(0), metrics.totals.error.unwrap_or(0));
    let urls = links::urls(ctx);
    let by_model: Map<String, Value> = metrics
        .by_model
        .iter()
        .map(|m| (m.model.clone(), json!(m.success + m.error)))
        .collect();
    json(
        200,
        &json!({
            "client_id": row.id,
            "client_name": row.name,
            "total_generations": success + error,
            "success_count": success,
            "error_count": error,
            "last_generation_at": metrics.last_generation_at.map(to_rfc3339),
            "generations_by_model": by_model,
            "recent_events": metrics.recent.iter().map(|g| admin_view(g, &urls)).collect::<Vec<_>>(),
        }),
    )
}

pub async fn generations(req: &Request, ctx: &Ctx, _admin: &AdminSession) -> ApiResult<Response> {
    let query = query_pairs(req)?;
    let (limit, after) = page_params(&query)?;
    let bad = |message: &str| ApiError::bad_request("invalid_query", message.to_string());
    let time = |name: &str| -> ApiResult<Option<u64>> {
        query_value(&query, name)
            .map(|v| parse_rfc3339(v).ok_or_else(|| bad(&format!("`{name}` must be an RFC 3339 time such as 2026-01-31T00:00:00Z"))))
            .transpose()
    };
    let filter = generations::Filter {
        client_id: query_value(&query, "client_id")
            .map(|v| parse_client_id(v).map(|c| c.to_string()).map_err(|_| bad("`client_id` is not a client id")))
            .transpose()?,
        shopper_id: query_value(&query, "shopper_id").map(|v| ShopperId::parse(v).map(|s| s.as_str().to_string())).transpose()?,
        status: query_value(&query, "status")
            .map(|v| generations::Outcome::parse(v).ok_or_else(|| bad("`status` must be success or error")))
            .transpose()?,
        model: query_value(&query, "model")
            .map(|v| Model::parse(v).map(|m| m.as_str().to_string()).ok_or_else(|| bad("`model` is not a model we offer")))
            .transpose()?,
        from_ms: time("from")?,
        to_ms: time("to")?,
        after,
        key_guard: None,
    };
    let rows = generations::list(&ctx.db, &filter, limit + 1).await?;
    let urls = links::urls(ctx);
    json(200, &page_of(rows, limit, |g| admin_view(g, &urls)))
}

/// `GET /admin/clients/{id}/shoppers?days=30`: how many shoppers used the
/// client's try-on lately, and the busiest of them.
pub async fn client_shoppers(req: &Request, ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let (client, days) = super::dashboard::client_and_days(req, ctx, id).await?;
    let since = ctx.now.saturating_sub(days * crate::domain::time::DAY_MS);
    let shoppers = dashboard::shoppers_of(&ctx.db, &client, since).await?;
    json(
        200,
        &json!({
            "client_id": client,
            "days": days,
            "shoppers": shoppers.count,
            "generations": shoppers.generations,
            "busiest": shoppers.busiest.iter().map(|s| json!({
                "shopper_id": s.shopper_id,
                "generations": s.generations,
                "successful": s.successful,
                "last_generation_at": to_rfc3339(s.last_at),
            })).collect::<Vec<_>>(),
        }),
    )
}
