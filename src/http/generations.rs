//! `GET /api/generations`: the calling client's own history.

use super::{json, page_params, query_pairs, split_page, Ctx};
use crate::auth::authenticate_read;
use crate::domain::cursor::Cursor;
use crate::domain::time::to_rfc3339;
use crate::error::ApiResult;
use crate::store::d1_error;
use crate::store::generations::{list_for_client, GenerationRow};
use serde_json::{json, Value};
use worker::{Request, Response};

pub async fn list(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let (limit, after) = page_params(&query_pairs(req)?)?;
    let (_, results) =
        authenticate_read(req, ctx, |client| Ok(vec![list_for_client(&ctx.db, client, limit + 1, after.as_ref())?])).await?;
    let rows: Vec<GenerationRow> = results[0].results().map_err(d1_error)?;
    json(200, &page(rows, limit, public_view))
}

/// A page of generations in the shape every list endpoint uses.
pub fn page(rows: Vec<GenerationRow>, limit: u32, view: fn(&GenerationRow) -> Value) -> Value {
    let (rows, next_cursor) = split_page(rows, limit, |r| Cursor { created_at: r.created_at, id: r.id.clone() });
    json!({ "data": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor })
}

/// What a client sees of its own generations.
pub fn public_view(g: &GenerationRow) -> Value {
    json!({
        "id": g.id,
        "model": g.model,
        "status": g.status,
        "endpoint": g.endpoint,
        "duration_ms": g.duration_ms,
        "fal_duration_ms": g.fal_duration_ms,
        "image_url": g.image_url,
        "error": g.error,
        "garments_count": g.garments_count,
        "job_id": g.job_id,
        "created_at": to_rfc3339(g.created_at),
    })
}

/// What admins see: everything, including the client and cold starts.
pub fn admin_view(g: &GenerationRow) -> Value {
    let mut v = public_view(g);
    v["client_id"] = json!(g.client_id);
    v["cold_start"] = json!(g.cold_start != 0);
    v
}
