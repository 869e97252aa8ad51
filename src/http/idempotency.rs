//! `Idempotency-Key` on the generation endpoints: the same key and request
//! from the same client within 24 hours gets the original response and
//! creates nothing new. The client's limiter object keeps the keys; this
//! file reads the header, replays a stored answer, and says what to store.

use crate::domain::api_key::hex_sha256;
use crate::error::{ApiError, ApiResult};
use crate::limiter::protocol::{IdempotencyClaim, IdempotencyCompletion, StoredResponse};
use crate::request::header;
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
pub fn completion(claim: Option<&IdempotencyClaim>, reply: &ApiResult<StoredResponse>) -> Option<IdempotencyCompletion> {
    let key = claim?.key.clone();
    let response = match reply {
        Ok(stored) => Some(stored.clone()),
        Err(e) if e.status() < 500 => Some(StoredResponse { status: e.status(), body: e.body().to_string(), location: None }),
        Err(_) => None,
    };
    Some(IdempotencyCompletion { key, response })
}
