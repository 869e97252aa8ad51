//! Forwarding each recorded generation to the operators' metrics back end
//! (`METRICS_ENDPOINT`): the MVP's GenerationMetric body, and the headers of
//! one attempt. Delivered like callbacks, through the queue.

use crate::store::generations::GenerationRow;
use serde_json::{json, Value};

/// The event, shaped like the MVP's GenerationMetric. Receivers deduplicate on `id`.
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

/// `Authorization: Bearer $METRICS_TOKEN` when that secret is set.
pub fn headers(token: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), "tryon-webhooks/1".to_string()),
    ];
    if let Some(token) = token {
        h.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    h
}
