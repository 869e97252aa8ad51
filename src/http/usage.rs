//! `GET /api/usage`: the calling client's usage this month, from its limiter.

use super::respond::json;
use crate::auth::ApiClient;
use crate::domain::time::to_rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::state::Ctx;
use serde_json::json;
use worker::Response;

/// `_client` is the proof of access; the figures came with its admission.
pub fn show(ctx: &Ctx, _client: &ApiClient) -> ApiResult<Response> {
    let limits = ctx.limits().ok_or_else(|| ApiError::Internal("the limiter admitted without limits".into()))?;
    json(
        200,
        &json!({
            "month": limits.month,
            "used": limits.quota_used,
            "in_progress": limits.quota_reserved,
            "limit": limits.quota_limit,
            "remaining": limits.quota_remaining,
            "resets_at": to_rfc3339(limits.quota_reset_at),
            "rate_limit_per_minute": limits.rate_limit_per_minute,
            "rate_limit_burst": limits.rate_burst,
            "max_concurrent": limits.max_concurrent,
            "in_flight": limits.in_flight,
        }),
    )
}
