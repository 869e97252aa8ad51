//! `GET /api/generations`: the calling client's own history, and the views
//! of a generation that clients and admins see.

use super::paging::{page_params, split_page};
use crate::domain::cursor::Cursor;
use crate::domain::api_key::ApiKey;
use crate::domain::result_url::ResultUrls;
use crate::domain::shopper::ShopperId;
use crate::error::ApiResult;
use crate::request::{query_pairs, query_value};
use crate::results::links;
use crate::state::Ctx;
use crate::store::d1_error;
use crate::store::generations::{list_for_client, GenerationRow, KeyGuard};
use serde_json::{json, Value};
use worker::{D1PreparedStatement, D1Result, Request, Response};

/// The page asked for; read before the key is checked, so a bad query costs nothing.
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
    /// `?shopper_id=`: one shopper's history (a shop's server only).
    pub shopper: Option<ShopperId>,
}

pub fn page_request(req: &Request) -> ApiResult<PageRequest> {
    let query = query_pairs(req)?;
    let (limit, after) = page_params(&query)?;
    let shopper = query_value(&query, "shopper_id").map(ShopperId::parse).transpose()?;
    Ok(PageRequest { limit, after, shopper })
}

/// The query for one client's page (batched with the key check by dispatch),
/// reading nothing unless `key` is one of the client's live keys.
pub fn page_statement(ctx: &Ctx, key: &ApiKey, page: &PageRequest) -> ApiResult<Vec<D1PreparedStatement>> {
    let guard = KeyGuard { hash: key.hash().0, now: ctx.now };
    Ok(vec![list_for_client(&ctx.db, key.client_id(), page.shopper.as_ref(), guard, page.limit + 1, page.after.as_ref())?])
}

pub fn list(ctx: &Ctx, page: PageRequest, results: Vec<D1Result>) -> ApiResult<Response> {
    let rows: Vec<GenerationRow> = match results.first() {
        Some(result) => result.results().map_err(d1_error)?,
        None => Vec::new(),
    };
    let urls = links::urls(ctx);
    super::respond::json(200, &page_of(rows, page.limit, |g| public_view(g, &urls)))
}

/// A page of generations in the shape every list endpoint uses.
pub fn page_of(rows: Vec<GenerationRow>, limit: u32, view: impl Fn(&GenerationRow) -> Value) -> Value {
    let (rows, next_cursor) = split_page(rows, limit, |r| Cursor { created_at: r.created_at, id: r.id.clone() });
    json!({ "data": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor })
}

/// What a client sees of its own generations (the view lives with the row,
/// so the `generation.completed` callback carries the same one). `image_url`
/// is our signed URL, minted for this read; null once the image is gone.
pub fn public_view(g: &GenerationRow, urls: &ResultUrls) -> Value {
    g.public_view(urls)
}

/// What admins see: everything, including the client, cold starts, FAL's
/// original URL and why an image copy has not (yet) been made.
pub fn admin_view(g: &GenerationRow, urls: &ResultUrls) -> Value {
    let mut v = public_view(g, urls);
    v["client_id"] = json!(g.client_id);
    v["cold_start"] = json!(g.cold_start != 0);
    v["fal_image_url"] = json!(g.image_url);
    v["image_error"] = json!(g.result_error);
    v
}
