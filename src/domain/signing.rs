//! Our own signatures (result URLs, widget tokens, …) from one secret,
//! `SIGNING_KEYS`: comma-separated `id:secret` pairs, newest first. The
//! newest key signs; every listed key verifies, so a rotation is "prepend a
//! new pair, drop the old one once the longest-lived signature made with it
//! has expired". Each use derives its own key, `HMAC(secret, purpose)`, so a
//! signature made for one purpose never verifies for another.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shorter secrets are refused: they could be guessed offline from one signature.
pub const MIN_SECRET_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 16;

struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

/// The parsed `SIGNING_KEYS`; never empty. Its `Debug` shows key ids only.
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "SigningKeys({ids:?}, secrets redacted)")
    }
}

impl SigningKeys {
    /// Reads `id:secret,id:secret,…`. Ids are 1–16 of `[A-Za-z0-9_-]` (they
    /// travel in URLs), unique; secrets at least `MIN_SECRET_LEN` characters.
    /// Errors name the offending key id, never a secret.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for (n, pair) in raw.split(',').map(str::trim).enumerate() {
            let (id, secret) = pair.split_once(':').ok_or_else(|| format!("SIGNING_KEYS entry {} is not `id:secret`", n + 1))?;
            let (id, secret) = (id.trim(), secret.trim());
            let id_ok = !id.is_empty()
                && id.len() <= MAX_KEY_ID_LEN
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !id_ok {
                return Err(format!("SIGNING_KEYS entry {}: the key id must be 1 to {MAX_KEY_ID_LEN} of A-Z a-z 0-9 _ -", n + 1));
            }
            if secret.chars().count() < MIN_SECRET_LEN {
                return Err(format!("SIGNING_KEYS key `{id}`: the secret must be at least {MIN_SECRET_LEN} characters"));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("SIGNING_KEYS names key `{id}` twice"));
            }
            keys.push(SigningKey { id: id.to_string(), secret: secret.as_bytes().to_vec() });
        }
        if keys.is_empty() {
            return Err("SIGNING_KEYS holds no key".into());
        }
        Ok(Self { keys })
    }

    /// The id of the key that signs (the first listed).
    pub fn current_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Signs `message` for `purpose` with the newest key: its id and the tag
    /// (unpadded base64url of HMAC-SHA256, safe in URLs and headers).
    pub fn sign(&self, purpose: &str, message: &[u8]) -> (String, String) {
        match self.keys.first() {
            Some(key) => (key.id.clone(), URL_SAFE_NO_PAD.encode(tag(key, purpose, message))),
            None => (String::new(), String::new()),
        }
    }

    /// Whether `tag` is the signature of `message` for `purpose` by the key
    /// `kid`. Unknown ids and undecodable tags are simply false; the tag is
    /// compared in constant time.
    pub fn verify(&self, purpose: &str, kid: &str, message: &[u8], tag: &str) -> bool {
        let Some(key) = self.keys.iter().find(|k| k.id == kid) else { return false };
        let Ok(presented) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        let mut mac = mac_for(&derive(key, purpose));
        mac.update(message);
        mac.verify_slice(&presented).is_ok()
    }
}

/// The key for one purpose: `HMAC(secret, purpose)`.
fn derive(key: &SigningKey, purpose: &str) -> Vec<u8> {
    let mut mac = mac_for(&key.secret);
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn tag(key: &SigningKey, purpose: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = mac_for(&derive(key, purpose));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn mac_for(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn keys(raw: &str) -> SigningKeys {
        SigningKeys::parse(raw).unwrap()
    }

    #[test]
    fn the_newest_key_signs_and_every_listed_key_verifies() {
        let old = keys(&format!("k1:{A}"));
        let (kid, tag) = old.sign("result-url", b"gen_1");
        assert_eq!(kid, "k1");
        let rotated = keys(&format!("k2:{B}, k1:{A}"));
        assert_eq!(rotated.current_kid(), "k2");
        assert!(rotated.verify("result-url", "k1", b"gen_1", &tag), "signatures of the previous key still verify");
        let (kid2, tag2) = rotated.sign("result-url", b"gen_1");
        assert_eq!(kid2, "k2");
        assert_ne!(tag, tag2);
        assert!(!old.verify("result-url", "k2", b"gen_1", &tag2), "a dropped or unknown key id verifies nothing");
    }

    #[test]
    fn a_signature_is_bound_to_its_message_purpose_and_key() {
        let k = keys(&format!("k1:{A},k0:{B}"));
        let (kid, tag) = k.sign("result-url", b"gen_1");
        assert!(k.verify("result-url", &kid, b"gen_1", &tag));
        assert!(!k.verify("result-url", &kid, b"gen_2", &tag));
        assert!(!k.verify("widget-token", &kid, b"gen_1", &tag), "another purpose derives another key");
        assert!(!k.verify("result-url", "k0", b"gen_1", &tag), "another key id");
        assert!(!k.verify("result-url", &kid, b"gen_1", "not base64!"));
        assert!(!k.verify("result-url", &kid, b"gen_1", ""));
        let mut flipped = tag.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(!k.verify("result-url", &kid, b"gen_1", &String::from_utf8(flipped).unwrap()));
    }

    #[test]
    fn the_derivation_is_hmac_of_the_purpose_under_the_secret() {
        // HMAC-SHA256(HMAC-SHA256(secret, purpose), message), computed by hand.
        let k = keys(&format!("k1:{A}"));
        let mut derive = HmacSha256::new_from_slice(A.as_bytes()).unwrap();
        derive.update(b"p");
        let mut mac = HmacSha256::new_from_slice(&derive.finalize().into_bytes()).unwrap();
        mac.update(b"m");
        assert_eq!(k.sign("p", b"m").1, URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn malformed_key_lists_are_refused_without_echoing_secrets() {
        for bad in ["", " ", "k1", &format!(":{A}"), "k1:short", &format!("k 1:{A}"), &format!("k1:{A},k1:{B}"), &format!("averyveryverylongkeyid:{A}")] {
            let err = SigningKeys::parse(bad).unwrap_err();
            assert!(!err.contains(A) && !err.contains(B), "{err}");
        }
        assert!(format!("{:?}", keys(&format!("k1:{A}"))).contains("k1"));
        assert!(!format!("{:?}", keys(&format!("k1:{A}"))).contains(A));
    }
}
