//! `GET /api/generations`: the calling client's own history, and the views
//! of a generation that clients and admins see.

use super::paging::{page_params, split_page};
use crate::domain::cursor::Cursor;
use crate::domain::ids::ClientId;
use crate::error::ApiResult;
use crate::request::query_pairs;
use crate::state::Ctx;
use crate::store::d1_error;
use crate::store::generations::{list_for_client, GenerationRow};
use serde_json::{json, Value};
use worker::{D1PreparedStatement, D1Result, Request, Response};

/// The page asked for; read before the key is checked, so a bad query costs nothing.
pub struct PageRequest {
    limit: u32,
    after: Option<Cursor>,
}

pub fn page_request(req: &Request) -> ApiResult<PageRequest> {
    let (limit, after) = page_params(&query_pairs(req)?)?;
    Ok(PageRequest { limit, after })
}

/// The query for one client's page (batched with the key check by dispatch).
pub fn page_statement(ctx: &Ctx, client: &ClientId, page: &PageRequest) -> ApiResult<Vec<D1PreparedStatement>> {
    Ok(vec![list_for_client(&ctx.db, client, page.limit + 1, page.after.as_ref())?])
}

pub fn list(page: PageRequest, results: Vec<D1Result>) -> ApiResult<Response> {
    let rows: Vec<GenerationRow> = match results.first() {
        Some(result) => result.results().map_err(d1_error)?,
        None => Vec::new(),
    };
    super::respond::json(200, &page_of(rows, page.limit, public_view))
}

/// A page of generations in the shape every list endpoint uses.
pub fn page_of(rows: Vec<GenerationRow>, limit: u32, view: fn(&GenerationRow) -> Value) -> Value {
    let (rows, next_cursor) = split_page(rows, limit, |r| Cursor { created_at: r.created_at, id: r.id.clone() });
    json!({ "data": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor })
}

/// What a client sees of its own generations (the view lives with the row,
/// so the `generation.completed` callback carries the same one).
pub fn public_view(g: &GenerationRow) -> Value {
    g.public_view()
}

/// What admins see: everything, including the client and cold starts.
pub fn admin_view(g: &GenerationRow) -> Value {
    let mut v = public_view(g);
    v["client_id"] = json!(g.client_id);
    v["cold_start"] = json!(g.cold_start != 0);
    v
}
