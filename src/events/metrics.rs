//! Forwarding each generation event to an external metrics back end
//! (`METRICS_ENDPOINT`), as the MVP did: in the background, retried, bounded
//! by a timeout, and never able to affect the client's response.

use crate::outbound;
use crate::state::Ctx;
use crate::store::generations::GenerationRow;
use serde_json::{json, Value};

/// Three attempts in all.
const BACKOFF_MS: [u64; 2] = [500, 2_000];
const TIMEOUT_MS: u64 = 3_000;

/// The event, shaped like the MVP's GenerationMetric.
pub fn event(g: &GenerationRow) -> Value {
    json!({
        "id": g.id,
        "client_id": g.client_id,
        "timestamp": g.created_at,
        "endpoint": g.endpoint,
        "duration_total_ms": g.duration_ms,
        "duration_fal_ms": g.fal_duration_ms,
        "status": g.status,
        "error": g.error,
        "metadata": {
            "model": g.model,
            "garments_count": g.garments_count,
            "cold_start": g.cold_start != 0,
            "job_id": g.job_id,
        },
    })
}

pub fn forward_in_background(ctx: &Ctx, g: &GenerationRow) {
    let Some(endpoint) = ctx.config.metrics_endpoint.clone() else { return };
    let authorization = ctx.config.metrics_token.as_ref().map(|t| format!("Bearer {}", t.expose()));
    let (id, body) = (g.id.clone(), event(g).to_string());
    ctx.in_background(async move {
        let headers = || {
            let mut h = vec![("content-type".to_string(), "application/json".to_string())];
            if let Some(auth) = &authorization {
                h.push(("authorization".to_string(), auth.clone()));
            }
            h
        };
        outbound::deliver(&endpoint, headers, &body, TIMEOUT_MS, &BACKOFF_MS, &format!("metrics event {id}")).await;
    });
}
