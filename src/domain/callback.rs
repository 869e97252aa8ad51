//! Signing the callbacks we send to a client's `webhook_url`, the Standard
//! Webhooks way: `webhook-id`, `webhook-timestamp`, and `webhook-signature:
//! v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_` secret.
//!
//! A client's secret is derived from our `WEBHOOK_SIGNING_KEY` and a version
//! number, so it is never stored: rotating it bumps the version.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";

pub fn derive_secret(master: &[u8], client_id: &str, version: u64) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(master).expect("HMAC takes keys of any length");
    mac.update(format!("client-callback-secret:{client_id}:{version}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The secret as shown to the client (once).
pub fn format_secret(secret: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(secret))
}

pub fn signature(secret: &[u8], message_id: &str, timestamp_s: u64, body: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{message_id}.{timestamp_s}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_example() {
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_differ_by_client_and_version() {
        let a1 = derive_secret(b"master", "cl_a", 1);
        assert_eq!(a1, derive_secret(b"master", "cl_a", 1));
        assert_ne!(a1, derive_secret(b"master", "cl_a", 2));
        assert_ne!(a1, derive_secret(b"master", "cl_b", 1));
        assert!(format_secret(&a1).starts_with("whsec_"));
    }
}
