//! A client's delivery log (`GET /admin/clients/{id}/deliveries`), an
//! admin's redelivery (`POST /admin/deliveries/{id}/redeliver`), and resuming
//! a client's paused callbacks (`POST /admin/clients/{id}/callbacks/resume`).

use super::clients::{self, parse_client_id};
use crate::auth::AdminSession;
use crate::error::{ApiError, ApiResult};
use crate::events::redeliver::redeliver as start_redelivery;
use crate::http::deliveries::{page_of, query, view};
use crate::http::respond::json;
use crate::state::Ctx;
use crate::store::{clients as client_store, deliveries};
use worker::{Request, Response};

/// Every delivery of the client's events, callbacks and metrics alike, newest first.
pub async fn list(req: &Request, ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    let q = query(req)?;
    client_store::get(&ctx.db, &client).await?.ok_or_else(|| ApiError::not_found("no such client"))?;
    let rows = deliveries::list(&ctx.db, &q.filter(&client, false), q.limit + 1).await?;
    json(200, &page_of(rows, q.limit))
}

/// Sends the logged event again (same body and webhook-id) with a fresh
/// retry schedule: `202`, the delivery now `pending`.
pub async fn redeliver(ctx: &Ctx, _admin: &AdminSession, id: &str) -> ApiResult<Response> {
    if !is_delivery_id(id) {
        return Err(ApiError::not_found("no such delivery"));
    }
    let delivery = start_redelivery(&ctx.services, id, ctx.now).await?;
    json(202, &view(&delivery))
}

/// Resumes a client's paused callbacks; events logged while paused stay
/// paused and can be redelivered one by one. Answers with the client.
pub async fn resume_callbacks(ctx: &Ctx, admin: &AdminSession, id: &str) -> ApiResult<Response> {
    let client = parse_client_id(id)?;
    if !deliveries::resume_callbacks(&ctx.db, &client, ctx.now).await? {
        return Err(ApiError::not_found("no such client"));
    }
    clients::show(ctx, admin, id).await
}

fn is_delivery_id(id: &str) -> bool {
    id.strip_prefix("dlv_").is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}
