//! `GET /api/deliveries`: the calling client's own callback deliveries, and
//! the view of a delivery that shops and admins see.

use crate::domain::api_key::ApiKey;
use crate::store::KeyGuard;
use super::paging::{page_params, split_page};
use crate::domain::cursor::Cursor;
use crate::domain::event::{callback_type_names, DeliveryStatus, EventType};
use crate::domain::ids::ClientId;
use crate::domain::time::to_rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::request::{query_pairs, query_value};
use crate::state::Ctx;
use crate::store::deliveries::{list_statement, listed, AttemptRow, ListFilter, ListedDelivery};
use serde_json::{json, Value};
use worker::{D1PreparedStatement, D1Result, Request, Response};

/// The page and filters asked for; read before the key is checked, so a bad
/// query costs nothing.
pub struct DeliveryQuery {
    pub limit: u32,
    pub after: Option<Cursor>,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
}

pub fn query(req: &Request) -> ApiResult<DeliveryQuery> {
    let pairs = query_pairs(req)?;
    let (limit, after) = page_params(&pairs)?;
    let status = match query_value(&pairs, "status").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(DeliveryStatus::parse(raw).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "`status` must be pending, retrying, delivered, failed or paused")
        })?),
    };
    let event_type = match query_value(&pairs, "event_type").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(EventType::parse(raw).ok_or_else(|| {
            ApiError::bad_request("invalid_query", format!("`event_type` must be one of {}, generation.recorded", callback_type_names()))
        })?),
    };
    Ok(DeliveryQuery { limit, after, status, event_type })
}

impl DeliveryQuery {
    pub fn filter(&self, client: &ClientId, callbacks_only: bool) -> ListFilter {
        ListFilter {
            client: client.clone(),
            callbacks_only,
            status: self.status,
            event_type: self.event_type,
            after: self.after.clone(),
            key_guard: None,
        }
    }
}

/// The query for one client's page (batched with the key check by dispatch).
/// Shops see their callbacks; metrics forwarding is the operators' business.
pub fn page_statement(ctx: &Ctx, key: &ApiKey, q: &DeliveryQuery) -> ApiResult<Vec<D1PreparedStatement>> {
    let filter = ListFilter { key_guard: Some(KeyGuard { hash: key.hash().0, now: ctx.now }), ..q.filter(key.client_id(), true) };
    Ok(vec![list_statement(&ctx.db, &filter, q.limit + 1)?])
}

pub fn list(q: DeliveryQuery, results: Vec<D1Result>) -> ApiResult<Response> {
    let rows: Vec<ListedDelivery> = match results.first() {
        Some(result) => listed(result)?,
        None => Vec::new(),
    };
    super::respond::json(200, &page_of(rows, q.limit))
}

/// A page of deliveries in the shape every list endpoint uses.
pub fn page_of(rows: Vec<ListedDelivery>, limit: u32) -> Value {
    let (rows, next_cursor) =
        split_page(rows, limit, |r| Cursor { created_at: r.delivery.created_at, id: r.delivery.id.clone() });
    json!({ "data": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next_cursor })
}

pub fn view(listed: &ListedDelivery) -> Value {
    let d = &listed.delivery;
    json!({
        "id": d.id,
        "client_id": d.client_id,
        "destination": d.destination,
        "event_type": d.event_type,
        "webhook_id": d.event_id,
        "status": d.status,
        "run": d.run,
        "attempt_count": d.attempts,
        "target": d.target,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at.map(to_rfc3339),
        "created_at": to_rfc3339(d.created_at),
        "updated_at": to_rfc3339(d.updated_at),
        "delivered_at": d.delivered_at.map(to_rfc3339),
        "dead_lettered_at": d.dead_lettered_at.map(to_rfc3339),
        "attempts": listed.attempts().iter().map(attempt_view).collect::<Vec<_>>(),
    })
}

fn attempt_view(a: &AttemptRow) -> Value {
    json!({
        "attempt": a.attempt,
        "run": a.run,
        "target": a.target,
        "status_code": a.status_code,
        "error": a.error,
        "latency_ms": a.latency_ms,
        "attempted_at": to_rfc3339(a.attempted_at),
        "next_attempt_at": a.next_attempt_at.map(to_rfc3339),
    })
}
