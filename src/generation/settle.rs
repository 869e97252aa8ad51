//! Ending a request at the limiter: settle its reservation (a success is
//! charged, anything else given back) and complete its idempotency key, in
//! one call to the client's object.

use crate::domain::ids::ClientId;
use crate::limiter::protocol::{IdempotencyCompletion, SettleRequest};
use crate::limiter::quota::Settlement;
use crate::state::Ctx;

/// With an idempotency key it is awaited, so a retry right after the
/// response finds the stored answer; without one it runs after the response
/// (if it is lost, the limiter's alarm settles the reservation from D1).
pub async fn finish(ctx: &Ctx, client: &ClientId, reservation: Option<(String, Settlement)>, idempotency: Option<IdempotencyCompletion>) {
    let request = SettleRequest { reservation, idempotency, now: ctx.now };
    if request.idempotency.is_some() {
        if let Err(e) = ctx.timed("limiter", ctx.limiter.settle(client, &request)).await {
            worker::console_warn!("completing an idempotency key failed: {e:?}");
        }
        return;
    }
    let (limiter, client) = (ctx.limiter.clone(), client.clone());
    ctx.in_background(async move {
        if let Err(e) = limiter.settle(&client, &request).await {
            worker::console_warn!("settling failed; the limiter's alarm will settle it: {e:?}");
        }
    });
}
