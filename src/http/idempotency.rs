//! `Idempotency-Key` on the generation endpoints: the same key and request
//! from the same client within 24 hours gets the original response and
//! creates nothing new. The client's limiter object keeps the keys.

use super::{header, Ctx};
use crate::domain::api_key::hex_sha256;
use crate::domain::ids::ClientId;
use crate::error::{ApiError, ApiResult};
use crate::limiter::client::Limiter;
use crate::limiter::policy::{IdempotencyClaim, Settlement, StoredResponse};
use crate::limiter::protocol::{IdempotencyCompletion, SettleRequest};
use worker::{Request, Response};

const MAX_KEY_LEN: usize = 255;

/// The claim a request makes with its `Idempotency-Key`, if it sent one.
pub fn claim(req: &Request, body: &[u8]) -> ApiResult<Option<IdempotencyClaim>> {
    let Some(key) = header(req, "idempotency-key") else {
        return Ok(None);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("`Idempotency-Key` must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    let mut fingerprinted = format!("{} {}\n", req.method(), req.path()).into_bytes();
    fingerprinted.extend_from_slice(body);
    Ok(Some(IdempotencyClaim { key, fingerprint: hex_sha256(&fingerprinted) }))
}

/// The stored response, answered again.
pub fn replay(stored: StoredResponse) -> ApiResult<Response> {
    let mut response = Response::from_bytes(stored.body.into_bytes())?.with_status(stored.status);
    let headers = response.headers_mut();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("idempotent-replayed", "true")?;
    if let Some(location) = stored.location {
        headers.set("location", &location)?;
    }
    Ok(response)
}

/// What to keep for a key: client errors and successes are final; a
/// failure on our side or FAL's is not, so a retry with the key runs again.
pub fn completion(claim: Option<&IdempotencyClaim>, result: &ApiResult<(u16, String, Option<String>)>) -> Option<IdempotencyCompletion> {
    let key = claim?.key.clone();
    let response = match result {
        Ok((status, body, location)) => Some(StoredResponse { status: *status, body: body.clone(), location: location.clone() }),
        Err(e) if e.status() < 500 => Some(StoredResponse { status: e.status(), body: e.body().to_string(), location: None }),
        Err(_) => None,
    };
    Some(IdempotencyCompletion { key, response })
}

/// Settles a reservation and completes an idempotency key in one limiter
/// call. With a key, it is awaited, so a retry right after the response
/// finds the stored answer; without one it runs after the response.
pub async fn finish(ctx: &Ctx, client: &ClientId, reservation: Option<(String, Settlement)>, idempotency: Option<IdempotencyCompletion>) {
    let request = SettleRequest { reservation, idempotency, now: ctx.now };
    let limiter = match Limiter::new(&ctx.env) {
        Ok(l) => l,
        Err(e) => return worker::console_error!("limiter binding missing: {e:?}"),
    };
    if request.idempotency.is_some() {
        if let Err(e) = ctx.timed("limiter", limiter.settle(client, &request)).await {
            worker::console_warn!("completing an idempotency key failed: {e:?}");
        }
        return;
    }
    let client = client.clone();
    ctx.wait.wait_until(async move {
        if let Err(e) = limiter.settle(&client, &request).await {
            worker::console_warn!("settling failed; the limiter's alarm will settle it: {e:?}");
        }
    });
}
