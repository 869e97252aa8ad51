//! `GET /api/usage`: the calling client's usage this month, from its limiter.

use super::{json, Ctx};
use crate::auth::{authenticate, presented_key};
use crate::domain::time::to_rfc3339;
use crate::error::{ApiError, ApiResult};
use serde_json::json;
use worker::{Request, Response};

pub async fn show(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let key = presented_key(req)?;
    authenticate(req, ctx, &key).await?;
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
