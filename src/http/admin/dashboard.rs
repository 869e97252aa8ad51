//! `GET /admin`: the dashboard, served by the worker itself (no CDN, no
//! separate deployment), and the aggregate calls behind it.

use crate::domain::ids::ClientId;
use super::clients::parse_client_id;
use crate::auth::AdminSession;
use crate::domain::time::{day_number, month_bounds, month_key, DAY_MS};
use crate::error::{ApiError, ApiResult};
use crate::http::respond::json;
use crate::request::{query_pairs, query_value};
use crate::state::Ctx;
use crate::store::{clients, dashboard};
use serde_json::json;
use worker::{Request, Response};

const PAGE: &str = include_str!("../../../assets/admin/index.html");
const SCRIPT: &str = include_str!("../../../assets/admin/app.js");
const STYLE: &str = include_str!("../../../assets/admin/app.css");

/// Only our own script and styles run; result thumbnails come from FAL's CDN
/// (https) or data URIs. Plain http on loopback (the local emulator) is
/// allowed only in development: a deployed page must not load from, or leak
/// its referrer to, whatever listens on the admin's own machine.
pub fn csp(development: bool) -> String {
    let loopback = if development { " http://127.0.0.1:* http://localhost:*" } else { "" };
    format!("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:{loopback}; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
}

pub fn page(development: bool) -> ApiResult<Response> {
    asset(PAGE, "text/html; charset=utf-8", "no-store", development)
}

pub fn static_asset(name: &str, development: bool) -> ApiResult<Response> {
    match name {
        "app.js" => asset(SCRIPT, "text/javascript; charset=utf-8", "no-cache", development),
        "app.css" => asset(STYLE, "text/css; charset=utf-8", "no-cache", development),
        _ => Err(ApiError::not_found("no such asset")),
    }
}

fn asset(body: &str, content_type: &str, cache: &str, development: bool) -> ApiResult<Response> {
    let mut response = Response::from_bytes(body.as_bytes().to_vec())?;
    let headers = response.headers_mut();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", cache)?;
    headers.set("content-security-policy", &csp(development))?;
    headers.set("x-frame-options", "DENY")?;
    headers.set("referrer-policy", "no-referrer")?;
    Ok(response)
}

pub async fn overview(ctx: &Ctx, _admin: &AdminSession) -> ApiResult<Response> {
    let today = day_number(ctx.now);
    let month_start = month_bounds(&month_key(ctx.now)).map_or(today, |(start, _)| day_number(start));
    let o = dashboard::overview(&ctx.db, today, month_start, &month_key(ctx.now)).await?;
    let totals = |t: &dashboard::Totals| {
        let (s, e) = (t.success.unwrap_or(0), t.error.unwrap_or(0));
        json!({ "success": s, "error": e, "total": s + e })
    };
    json(
        200,
        &json!({
            "today": totals(&o.today),
            "month": totals(&o.month),
            "busiest_clients": o.busiest,
            "clients": o.clients,
        }),
    )
}

/// The client a per-client view is for (404 if there is none) and its
/// `?days=` window (1 to 400, default 30).
pub(super) async fn client_and_days(req: &Request, ctx: &Ctx, id: &str) -> ApiResult<(ClientId, u64)> {
    let client = parse_client_id(id)?;
    let query = query_pairs(req)?;
    let days: u64 = match query_value(&query, "days") {
        None => 30,
        Some(v) => v.parse().ok().filter(|d| (1..=400).contains(d)).ok_or_else(|| ApiError::bad_request("invalid_query", "`days` must be 1 to 400"))?,
    };
    clients::get(&ctx.db, &client).await?.ok_or_else(|| ApiError::not_found("no such client"))?;
    Ok((client, days))
}

pub async fn client_stats(req: &Request, ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let (client, days) = client_and_days(req, ctx, id).await?;
    let from_day = day_number(ctx.now) + 1 - days;
    let stats = dashboard::client_stats(&ctx.db, &client, from_day, from_day * DAY_MS).await?;
    json(
        200,
        &json!({
            "client_id": client,
            "days": days,
            "daily": stats.daily,
            "duration_ms": stats.durations,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::csp;

    #[test]
    fn the_deployed_policy_allows_no_loopback_origin() {
        assert!(!csp(false).contains("127.0.0.1") && !csp(false).contains("localhost") && !csp(false).contains("http:"));
        assert!(csp(true).contains("http://127.0.0.1:*"));
    }
}
