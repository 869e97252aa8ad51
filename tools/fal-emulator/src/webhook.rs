//! Webhook delivery, signed the way FAL signs: Ed25519 over
//! `request_id \n user_id \n timestamp \n hex(sha256(body))`, hex-encoded in
//! `X-Fal-Webhook-Signature`, verifiable with the key published at
//! `/.well-known/jwks.json`.

use crate::faults::{Fault, FaultMode};
use crate::AppState;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const USER_ID: &str = "emulator-user";
const ATTEMPTS: u32 = 3;

/// One delivery attempt, for tests to inspect.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub request_id: String,
    /// The receiver's HTTP status; `None` when it could not be reached.
    pub status: Option<u16>,
    /// When the attempt finished (ms since the Unix epoch), so tests can
    /// check the spacing between retries.
    pub at_ms: u64,
}

pub fn jwks(key: &SigningKey) -> Value {
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "emulator", "use": "sig", "alg": "EdDSA" }] })
}

/// The four `X-Fal-Webhook-*` headers for `body`, signed with `key` at `timestamp` (seconds).
pub fn signature_headers(key: &SigningKey, request_id: &str, timestamp: u64, body: &[u8]) -> Vec<(String, String)> {
    let digest: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    let message = format!("{request_id}\n{USER_ID}\n{timestamp}\n{digest}");
    let signature: String = key.sign(message.as_bytes()).to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("x-fal-webhook-request-id".into(), request_id.into()),
        ("x-fal-webhook-user-id".into(), USER_ID.into()),
        ("x-fal-webhook-timestamp".into(), timestamp.to_string()),
        ("x-fal-webhook-signature".into(), signature),
    ]
}

pub fn now_s() -> u64 {
    now_ms() / 1000
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The body FAL posts when a queued request ends.
pub fn payload(request_id: &str, outcome: &Result<Value, (u16, Value)>) -> Value {
    match outcome {
        Ok(output) => json!({ "request_id": request_id, "gateway_request_id": request_id, "status": "OK", "payload": output, "error": null }),
        Err((status, detail)) => json!({
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": "ERROR",
            "payload": { "detail": detail },
            "error": format!("Invalid status code: {status}"),
            "payload_error": null,
        }),
    }
}

pub async fn deliver(state: Arc<AppState>, url: String, request_id: String, outcome: Result<Value, (u16, Value)>, fault: Option<Fault>) {
    let mode = fault.as_ref().map(|f| f.mode);
    let copies = match mode {
        Some(FaultMode::WebhookNever) => 0,
        Some(FaultMode::WebhookTwice) => 2,
        _ => 1,
    };
    if mode == Some(FaultMode::WebhookLate) {
        tokio::time::sleep(Duration::from_millis(fault.as_ref().map_or(0, |f| f.delay_ms))).await;
    }
    let body = payload(&request_id, &outcome).to_string();
    let forger = SigningKey::from_bytes(&rand::random());
    let key = if mode == Some(FaultMode::WebhookBadSignature) { &forger } else { &state.signing_key };
    for _ in 0..copies {
        post_with_retries(&state, &url, &request_id, key, &body).await;
    }
}

async fn post_with_retries(state: &AppState, url: &str, request_id: &str, key: &SigningKey, body: &str) {
    for attempt in 0..ATTEMPTS {
        let mut request = state.http.post(url).header("content-type", "application/json").body(body.to_string());
        for (name, value) in signature_headers(key, request_id, now_s(), body.as_bytes()) {
            request = request.header(name, value);
        }
        let status = request.send().await.ok().map(|r| r.status().as_u16());
        state.deliveries.lock().unwrap().push(Delivery { request_id: request_id.to_string(), status, at_ms: now_ms() });
        // FAL retries deliveries that fail; 4xx means the receiver refused it for good.
        if matches!(status, Some(s) if s < 500) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300 * (attempt as u64 + 1))).await;
    }
}
