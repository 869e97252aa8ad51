//! `POST /api/images/generate`: the synchronous try-on.
//!
//! Round trips: one to the client's limiter object before FAL (key, origin,
//! rate, quota and concurrency in one decision, made by dispatch), then after
//! FAL one D1 batch (the generation row and its rollups, awaited so the
//! attempt is never lost and history reads see it at once) and one limiter
//! call to settle the reservation (in `waitUntil`: if it is lost, the
//! limiter's alarm settles the reservation from the D1 row).

use super::idempotency;
use super::input::GenerationInput;
use super::respond::json_text;
use crate::auth::ApiClient;
use crate::domain::ids::ClientId;
use crate::error::{ApiError, ApiResult};
use crate::generation::{settle, sync};
use crate::limiter::protocol::StoredResponse;
use crate::results::links;
use crate::state::Ctx;
use serde_json::json;
use worker::Response;

/// A reservation outlives the FAL call by a minute, so the alarm only
/// settles one whose request has certainly ended.
pub fn reservation_ttl_ms(ctx: &Ctx) -> u64 {
    ctx.config.fal.timeout_ms + 60_000
}

pub async fn run(ctx: &Ctx, client: &ApiClient, input: GenerationInput) -> ApiResult<Response> {
    // The FAL call, the record and the settlement complete even if the
    // shopper goes away meanwhile (see `Ctx::detached`): every attempt is a
    // row, and its reservation is settled at once, not 15 minutes later.
    let (work, owner) = (ctx.clone(), client.id.clone());
    let reply = ctx
        .detached(async move { generate(&work, &owner, input).await })
        .await
        .ok_or_else(|| ApiError::Internal("the generation was dropped".into()))?;
    let reply = reply?;
    json_text(reply.status, reply.body)
}

async fn generate(ctx: &Ctx, client: &ClientId, input: GenerationInput) -> ApiResult<StoredResponse> {
    let done = sync::run(ctx, client.as_str(), input.id, &input.request, input.started).await;
    let reply = done.result.map_err(ApiError::from).map(|output| {
        // Our URL (served from our bucket), never FAL's, which FAL deletes.
        let image_url = links::of_row(&links::urls(ctx), &done.row);
        let mut image = json!(output.image);
        image["url"] = json!(image_url);
        if let Some(content_type) = &done.row.result_content_type {
            image["content_type"] = json!(content_type);
        }
        let body = json!({
            "generation_id": done.row.id,
            "image_url": image_url,
            "model": done.row.model,
            "duration_ms": done.row.duration_ms,
            "fal_duration_ms": done.row.fal_duration_ms,
            "image": image,
            "description": output.description,
        });
        StoredResponse { status: 200, body: body.to_string(), location: None }
    });
    let completion = idempotency::completion(input.claim.as_ref(), &reply);
    settle::finish(ctx, client, Some((done.row.id.clone(), done.row.status.into())), completion).await;
    reply
}
