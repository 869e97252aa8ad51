//! FAL's webhooks as FAL documents them (docs.fal.ai, "Verifying your
//! webhook"): Ed25519 over `request_id \n user_id \n timestamp \n
//! hex(sha256(body))`, hex-encoded in `X-Fal-Webhook-Signature`, the public
//! keys published as a JWKS. Written here from the documentation, not taken
//! from the emulator, so a test that signs its own delivery checks the worker
//! against FAL's scheme, not against a second copy of our reading of it.

use super::api::{Api, Reply};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const USER_ID: &str = "e2e-user";

/// The emulator's signing key: the one its JWKS publishes.
pub fn emulator_key() -> SigningKey {
    super::stack::emulator().state.signing_key.clone()
}

/// A key FAL never published.
pub fn unpublished_key() -> SigningKey {
    SigningKey::from_bytes(&rand_bytes())
}

fn rand_bytes() -> [u8; 32] {
    let mut seed = Sha256::new();
    seed.update(super::marker().as_bytes());
    seed.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The four `X-Fal-Webhook-*` headers for `body`.
pub fn signed_headers(key: &SigningKey, request_id: &str, timestamp: u64, body: &[u8]) -> Vec<(String, String)> {
    let message = format!("{request_id}\n{USER_ID}\n{timestamp}\n{}", hex(&Sha256::digest(body)));
    vec![
        ("x-fal-webhook-request-id".into(), request_id.into()),
        ("x-fal-webhook-user-id".into(), USER_ID.into()),
        ("x-fal-webhook-timestamp".into(), timestamp.to_string()),
        ("x-fal-webhook-signature".into(), hex(&key.sign(message.as_bytes()).to_bytes())),
    ]
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// FAL's body for a successful request.
pub fn ok_body(request_id: &str, image_url: &str) -> String {
    json!({ "request_id": request_id, "gateway_request_id": request_id, "status": "OK",
        "payload": { "images": [{ "url": image_url, "content_type": "image/png", "width": 64, "height": 64 }] }, "error": null })
    .to_string()
}

/// FAL's body for a failed request.
pub fn error_body(request_id: &str) -> String {
    json!({ "request_id": request_id, "gateway_request_id": request_id, "status": "ERROR",
        "payload": { "detail": "late failure" }, "error": "Invalid status code: 500" })
    .to_string()
}

/// Posts `body` to our webhook for `job_id`, signed by `key` at `timestamp`.
pub async fn deliver(api: &Api, job_id: &str, request_id: &str, body: &str, key: &SigningKey, timestamp: u64) -> Reply {
    let mut call = api.post(&format!("/api/webhooks/fal?job={job_id}")).raw("application/json", body.to_string());
    for (name, value) in signed_headers(key, request_id, timestamp, body.as_bytes()) {
        call = call.header(&name, &value);
    }
    call.send().await
}

/// A job id that was never created.
pub fn unknown_job_id() -> String {
    let suffix: String = hex(&rand_bytes()).chars().take(20).collect();
    format!("job_{suffix}")
}

/// A signed delivery for a job that does not exist: `503` once the signature
/// verified (the job is "not visible yet"), `401` if it did not.
pub async fn deliver_for_unknown_job(base: &str, key: &SigningKey) -> Reply {
    deliver_for_unknown_job_at(base, key, now_s()).await
}

pub async fn deliver_for_unknown_job_at(base: &str, key: &SigningKey, timestamp: u64) -> Reply {
    let request_id = format!("req-{}", super::marker());
    let body = ok_body(&request_id, "https://fal.media/files/x.png");
    deliver(&Api::at(base), &unknown_job_id(), &request_id, &body, key, timestamp).await
}

/// The JWK FAL would publish for `key`.
pub fn jwk(key: &SigningKey, kid: &str) -> Value {
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA" })
}
