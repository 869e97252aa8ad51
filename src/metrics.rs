//! Forwarding each generation event to an external metrics back end
//! (`METRICS_ENDPOINT`), as the MVP did: in the background, retried, bounded
//! by a timeout, and never able to affect the client's response.

use crate::http::Ctx;
use crate::outbound;
use crate::store::generations::GenerationRow;
use serde_json::{json, Value};
use std::time::Duration;
use worker::{Delay, Method};

const ATTEMPTS: usize = 3;
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
    ctx.wait.wait_until(async move {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &authorization {
            headers.push(("authorization", auth));
        }
        for attempt in 0..ATTEMPTS {
            match outbound::send(Method::Post, &endpoint, &headers, Some(body.clone()), TIMEOUT_MS).await {
                Ok((status, _)) if (200..300).contains(&status) => return,
                Ok((status, _)) => worker::console_warn!("metrics event {id} attempt {}: HTTP {status}", attempt + 1),
                Err(e) => worker::console_warn!("metrics event {id} attempt {}: {e:?}", attempt + 1),
            }
            if let Some(wait) = BACKOFF_MS.get(attempt) {
                Delay::from(Duration::from_millis(*wait)).await;
            }
        }
        worker::console_error!("metrics event {id} was not delivered after {ATTEMPTS} attempts");
    });
}
