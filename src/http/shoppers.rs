//! A shopper's own history (`GET /api/shoppers/me/generations`, for the
//! widget) and a shopper's erasure (`DELETE /api/shoppers/{shopper_id}`,
//! for the shop's server: the right to erasure).

use super::generations::{page_of, public_view, PageRequest};
use super::respond::json;
use crate::auth::ApiClient;
use crate::domain::result::object_key;
use crate::domain::shopper::ShopperId;
use crate::error::{ApiError, ApiResult};
use crate::results::links;
use crate::state::Ctx;
use crate::store::generations::{erase_shopper, list_for_shopper};
use serde_json::json;
use worker::Response;

/// The widget's shopper's generations, newest first: theirs only.
pub async fn history(ctx: &Ctx, client: &ApiClient, page: PageRequest) -> ApiResult<Response> {
    let shopper = client.shopper.as_ref().ok_or_else(|| ApiError::Internal("a shopper route admitted without a shopper".into()))?;
    if page.shopper.is_some() {
        return Err(ApiError::bad_request("invalid_query", "`shopper_id` is set by the widget's credential"));
    }
    let rows = ctx.timed("store", list_for_shopper(&ctx.db, &client.id, shopper, page.limit + 1, page.after.as_ref())).await?;
    let urls = links::urls(ctx);
    json(200, &page_of(rows, page.limit, |g| public_view(g, &urls)))
}

/// The path's shopper id, percent-decoded (shop-given ids may hold any character).
pub fn parse_path(raw: &str) -> ApiResult<ShopperId> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("invalid_shopper_id", "the shopper id is not valid UTF-8 once decoded"))?;
    Ok(ShopperId::parse(&decoded)?)
}

/// Erases the shopper's personal data: their id, the shop's metadata and the
/// result images of their generations (the rows stay, so usage and invoices
/// still count them), and their live jobs and per-shopper counters.
pub async fn erase(ctx: &Ctx, client: &ApiClient, shopper: &ShopperId) -> ApiResult<Response> {
    let erased = ctx.timed("store", erase_shopper(&ctx.db, &client.id, shopper)).await?;
    let images: Vec<String> = erased.iter().map(|id| object_key(client.id.as_str(), id)).collect();
    for chunk in images.chunks(1000) {
        ctx.results.delete(chunk.to_vec()).await?;
    }
    let jobs = ctx.timed("limiter", ctx.limiter.erase_shopper(&client.id, shopper.as_str())).await?;
    for job in &jobs {
        // KV's copies expire with their job anyway; deleting them now is courtesy.
        if let Err(e) = ctx.jobs.delete(job).await {
            worker::console_warn!("erasing the KV copy of {job}: {e:?}");
        }
    }
    json(200, &json!({ "shopper_id": shopper, "erased_generations": erased.len(), "erased_jobs": jobs.len() }))
}
