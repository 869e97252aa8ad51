//! Widget session tokens: what a shop's back end mints for one shopper on
//! one page (`POST /api/widget-sessions`), for the widget to present instead
//! of a key. `vto_wt_<payload>.<key id>.<tag>`: the payload (client, origin,
//! shopper, expiry) in base64url JSON, signed with `SIGNING_KEYS` for the
//! purpose "widget-token". Verifying one reads no storage.

use super::ids::ClientId;
use super::shopper::ShopperId;
use super::signing::SigningKeys;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "vto_wt_";
const PURPOSE: &str = "widget-token";
/// Tokens live an hour at most: long enough for a shopping session, short
/// enough that a copied token is soon worthless.
pub const MAX_TTL_S: u64 = 3600;
pub const DEFAULT_TTL_S: u64 = 900;
/// No genuine token is longer (a long origin and shopper id included).
const MAX_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetToken {
    pub client_id: ClientId,
    pub origin: String,
    pub shopper_id: ShopperId,
    /// Milliseconds since the epoch.
    pub expires_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    c: String,
    o: String,
    s: String,
    e: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or not one we signed (tampered, unknown key).
    Invalid,
    Expired,
}

impl WidgetToken {
    pub fn sign(&self, keys: &SigningKeys) -> String {
        let payload = Payload { c: self.client_id.to_string(), o: self.origin.clone(), s: self.shopper_id.as_str().to_string(), e: self.expires_at };
        let body = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default()));
        let (kid, tag) = keys.sign(PURPOSE, body.as_bytes());
        format!("{body}.{kid}.{tag}")
    }

    /// The token `raw`, if we signed it and it has not expired at `now`.
    pub fn verify(raw: &str, keys: &SigningKeys, now: u64) -> Result<Self, TokenError> {
        if raw.len() > MAX_LEN || !raw.starts_with(PREFIX) {
            return Err(TokenError::Invalid);
        }
        let mut parts = raw.rsplitn(3, '.');
        let (Some(tag), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        if !keys.verify(PURPOSE, kid, body.as_bytes(), tag) {
            return Err(TokenError::Invalid);
        }
        let encoded = body.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| TokenError::Invalid)?;
        let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)?;
        let token = Self {
            client_id: ClientId::parse(&payload.c).ok_or(TokenError::Invalid)?,
            shopper_id: ShopperId::parse(&payload.s).map_err(|_| TokenError::Invalid)?,
            origin: payload.o,
            expires_at: payload.e,
        };
        if now >= token.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &str) -> SigningKeys {
        SigningKeys::parse(raw).unwrap()
    }

    fn token() -> WidgetToken {
        WidgetToken {
            client_id: ClientId::parse("cl_abcdefghjkmnpqrs").unwrap(),
            origin: "https://shop.example".into(),
            shopper_id: ShopperId::parse("cust-42").unwrap(),
            expires_at: 10_000,
        }
    }

    const K1: &str = "k1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn a_token_verifies_until_it_expires() {
        let signed = token().sign(&keys(K1));
        assert!(signed.starts_with(PREFIX));
        assert_eq!(WidgetToken::verify(&signed, &keys(K1), 9_999), Ok(token()));
        assert_eq!(WidgetToken::verify(&signed, &keys(K1), 10_000), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_foreign_and_garbage_tokens_are_invalid() {
        let signed = token().sign(&keys(K1));
        let other = WidgetToken { shopper_id: ShopperId::parse("cust-43").unwrap(), ..token() }.sign(&keys(K1));
        let (body, _) = signed.split_once('.').unwrap();
        let (_, rest) = other.split_once('.').unwrap();
        assert_eq!(WidgetToken::verify(&format!("{body}.{rest}"), &keys(K1), 0), Err(TokenError::Invalid), "another token's signature");
        let stranger = keys("k1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        assert_eq!(WidgetToken::verify(&signed, &stranger, 0), Err(TokenError::Invalid), "signed with another secret");
        for garbage in ["", "vto_wt_", "vto_wt_a.b.c", "vto_wt_é.k1.x", &"x".repeat(5000)] {
            assert_eq!(WidgetToken::verify(garbage, &keys(K1), 0), Err(TokenError::Invalid), "{garbage:.20}");
        }
    }

    #[test]
    fn a_rotated_key_still_verifies_tokens_it_signed() {
        let signed = token().sign(&keys(K1));
        let rotated = keys(&format!("k2:cccccccccccccccccccccccccccccccccccc,{K1}"));
        assert!(WidgetToken::verify(&signed, &rotated, 0).is_ok());
    }
}
