//! Verifying FAL's webhooks before trusting a byte of them. FAL signs
//! `request_id \n user_id \n timestamp \n hex(sha256(raw body))` with Ed25519
//! and publishes its public keys as a JWKS; the signature travels hex-encoded.

use super::models::{error_reason, parse_output, ResultUrls};
use crate::domain::job::JobOutcome;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Deliveries older (or newer) than this are refused, so a captured webhook
/// cannot be replayed later.
pub const TOLERANCE_S: u64 = 300;

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    MissingHeader(&'static str),
    BadTimestamp,
    Stale,
    BadSignatureEncoding,
    NoKeys,
    SignatureMismatch,
}

impl VerifyError {
    pub fn describe(&self) -> String {
        match self {
            VerifyError::MissingHeader(h) => format!("missing the {h} header"),
            VerifyError::BadTimestamp => "the timestamp is not a number".into(),
            VerifyError::Stale => format!("the timestamp is more than {TOLERANCE_S} s away from now"),
            VerifyError::BadSignatureEncoding => "the signature is not 64 hex-encoded bytes".into(),
            VerifyError::NoKeys => "no FAL signing keys are available".into(),
            VerifyError::SignatureMismatch => "the signature does not match".into(),
        }
    }
}

pub struct SignedDelivery {
    pub request_id: String,
    pub user_id: String,
    pub timestamp: u64,
    signature: Signature,
}

impl SignedDelivery {
    /// Reads the four `X-Fal-Webhook-*` headers through `header`.
    pub fn from_headers(header: impl Fn(&str) -> Option<String>) -> Result<Self, VerifyError> {
        let get = |name: &'static str| header(name).filter(|v| !v.is_empty()).ok_or(VerifyError::MissingHeader(name));
        let request_id = get("x-fal-webhook-request-id")?;
        let user_id = get("x-fal-webhook-user-id")?;
        let timestamp = get("x-fal-webhook-timestamp")?.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
        let signature = decode_hex_64(get("x-fal-webhook-signature")?.trim()).ok_or(VerifyError::BadSignatureEncoding)?;
        Ok(Self { request_id, user_id, timestamp, signature: Signature::from_bytes(&signature) })
    }

    /// Checks freshness, then the signature against any of `keys`.
    pub fn verify(&self, body: &[u8], keys: &[VerifyingKey], now_s: u64) -> Result<(), VerifyError> {
        if now_s.abs_diff(self.timestamp) > TOLERANCE_S {
            return Err(VerifyError::Stale);
        }
        if keys.is_empty() {
            return Err(VerifyError::NoKeys);
        }
        let digest: String = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        let message = format!("{}\n{}\n{}\n{digest}", self.request_id, self.user_id, self.timestamp);
        keys.iter()
            .any(|k| k.verify_strict(message.as_bytes(), &self.signature).is_ok())
            .then_some(())
            .ok_or(VerifyError::SignatureMismatch)
    }
}

fn decode_hex_64(hex: &str) -> Option<[u8; 64]> {
    if hex.len() != 128 {
        return None;
    }
    let mut out = [0u8; 64];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a verified webhook says: which FAL request ended, and how.
#[derive(Debug, PartialEq, Eq)]
pub struct WebhookReport {
    pub request_id: String,
    pub outcome: JobOutcome,
}

#[derive(Deserialize)]
struct RawReport {
    request_id: String,
    status: String,
    #[serde(default)]
    payload: Value,
    error: Option<String>,
}

/// Reads FAL's webhook body: `"status": "OK"` carries the model's output in
/// `payload` (which may still be unusable), anything else is a failure whose
/// reason is in `payload.detail` or, failing that, in `error`.
pub fn parse_report(body: &[u8], results: ResultUrls) -> Result<WebhookReport, String> {
    let raw: RawReport = serde_json::from_slice(body).map_err(|e| format!("the webhook body is not FAL's shape: {e}"))?;
    let outcome = match raw.status.as_str() {
        "OK" => match parse_output(&raw.payload.to_string(), results) {
            Ok(output) => JobOutcome::Done { image_url: output.image.url, description: output.description },
            Err(f) => JobOutcome::Failed { error: f.describe() },
        },
        _ => {
            let reason = error_reason(&raw.payload.to_string());
            let reason = if reason == "no details" { raw.error.unwrap_or(reason) } else { reason };
            JobOutcome::Failed { error: format!("FAL failed the request: {reason}") }
        }
    };
    Ok(WebhookReport { request_id: raw.request_id, outcome })
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
}

/// The Ed25519 keys of a JWKS document (other key types are skipped).
pub fn keys_from_jwks(json: &str) -> Result<Vec<VerifyingKey>, String> {
    let jwks: Jwks = serde_json::from_str(json).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    Ok(jwks
        .keys
        .into_iter()
        .filter(|k| k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"))
        .filter_map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(k.x?.trim_end_matches('=')).ok())
        .filter_map(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fal_emulator::webhook::{jwks, signature_headers};

    fn key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
    }

    fn delivery(headers: &[(String, String)]) -> Result<SignedDelivery, VerifyError> {
        SignedDelivery::from_headers(|name| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn a_signed_delivery_verifies_against_the_jwks() {
        let keys = keys_from_jwks(&jwks(&key()).to_string()).unwrap();
        let body = br#"{"request_id":"r1","status":"OK"}"#;
        let headers = signature_headers(&key(), "r1", 1_000_000, body);
        let d = delivery(&headers).unwrap();
        assert_eq!(d.verify(body, &keys, 1_000_100), Ok(()));
        assert_eq!(d.verify(b"{\"tampered\":true}", &keys, 1_000_100), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn stale_forged_and_unsigned_deliveries_are_refused() {
        let keys = keys_from_jwks(&jwks(&key()).to_string()).unwrap();
        let body = b"{}";
        let d = delivery(&signature_headers(&key(), "r1", 1_000_000, body)).unwrap();
        assert_eq!(d.verify(body, &keys, 1_000_000 + TOLERANCE_S + 1), Err(VerifyError::Stale));
        let forger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let forged = delivery(&signature_headers(&forger, "r1", 1_000_000, body)).unwrap();
        assert_eq!(forged.verify(body, &keys, 1_000_000), Err(VerifyError::SignatureMismatch));
        assert_eq!(delivery(&[]).err(), Some(VerifyError::MissingHeader("x-fal-webhook-request-id")));
        let mut bad = signature_headers(&key(), "r1", 1_000_000, body);
        bad[3].1 = "zz".into();
        assert_eq!(delivery(&bad).err(), Some(VerifyError::BadSignatureEncoding));
        // Another request's signature does not transfer.
        let other = delivery(&signature_headers(&key(), "r2", 1_000_000, body)).unwrap();
        let swapped = SignedDelivery { request_id: "r1".into(), ..other };
        assert_eq!(swapped.verify(body, &keys, 1_000_000), Err(VerifyError::SignatureMismatch));
    }

    #[test]
    fn reports_become_typed_outcomes() {
        let ok = br#"{"request_id":"r1","status":"OK","payload":{"images":[{"url":"https://v3.fal.media/x.png"}]}}"#;
        let report = parse_report(ok, ResultUrls::default()).unwrap();
        assert_eq!(report.request_id, "r1");
        assert_eq!(report.outcome, JobOutcome::Done { image_url: "https://v3.fal.media/x.png".into(), description: None });
        let failed = br#"{"request_id":"r1","status":"ERROR","payload":{"detail":"boom"},"error":"Invalid status code: 500"}"#;
        assert_eq!(parse_report(failed, ResultUrls::default()).unwrap().outcome, JobOutcome::Failed { error: "FAL failed the request: boom".into() });
        let bare = br#"{"request_id":"r1","status":"ERROR","payload":null,"error":"Invalid status code: 500"}"#;
        assert_eq!(parse_report(bare, ResultUrls::default()).unwrap().outcome, JobOutcome::Failed { error: "FAL failed the request: Invalid status code: 500".into() });
        let unusable = br#"{"request_id":"r1","status":"OK","payload":{"images":[]}}"#;
        assert!(matches!(parse_report(unusable, ResultUrls::default()).unwrap().outcome, JobOutcome::Failed { .. }));
        assert!(parse_report(b"[]", ResultUrls::default()).is_err());
    }

    #[test]
    fn jwks_parsing_keeps_only_ed25519_keys() {
        let doc = r#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":"not base64!"}]}"#;
        assert!(keys_from_jwks(doc).unwrap().is_empty());
        assert!(keys_from_jwks("nope").is_err());
    }
}
