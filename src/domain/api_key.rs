//! API keys: `vto_<client id>_<secret><checksum>`.
//!
//! The key carries the client id so the client's limiter object can be found
//! without a database lookup, a recognisable prefix so secret scanners can spot
//! leaked keys, and a CRC32 checksum so a mistyped or truncated key is refused
//! before any storage is touched. Only the SHA-256 of the whole key is stored.

use super::ids::{random_base62, ClientId, BASE62, CLIENT_ID_SUFFIX_LEN};
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "vto_";
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const KEY_LEN: usize = KEY_PREFIX.len() + CLIENT_ID_SUFFIX_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
/// How much of the key is kept for display (`vto_<client>_<4 chars>`): enough to
/// tell keys apart in the dashboard, far too little to guess the rest.
const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + CLIENT_ID_SUFFIX_LEN + 1 + 4;

#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    full: String,
    client_id: ClientId,
}

/// Hex SHA-256 of a full key: what storage and the limiter compare.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash(pub String);

#[derive(Debug, PartialEq, Eq)]
pub enum KeyFormatError {
    WrongPrefix,
    WrongLength,
    BadCharacters,
    BadChecksum,
}

impl ApiKey {
    pub fn generate(client_id: &ClientId) -> Self {
        let body = format!(
            "{KEY_PREFIX}{}_{}",
            client_id.suffix(),
            random_base62(SECRET_LEN)
        );
        let full = format!("{body}{}", checksum(&body));
        Self { full, client_id: client_id.clone() }
    }

    /// Total: any string, however long or whatever its characters, is either
    /// a key or a `KeyFormatError` (a key sent in a header must never be able
    /// to panic the worker, which would abort every request on the isolate).
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let rest = raw.strip_prefix(KEY_PREFIX).ok_or(KeyFormatError::WrongPrefix)?;
        if raw.len() != KEY_LEN {
            return Err(KeyFormatError::WrongLength);
        }
        // Every slice below is at a byte offset, so the key must be ASCII
        // first: one multi-byte character would put an offset inside it.
        if !raw.is_ascii() {
            return Err(KeyFormatError::BadCharacters);
        }
        let client_part = rest.get(..CLIENT_ID_SUFFIX_LEN).ok_or(KeyFormatError::BadCharacters)?;
        let tail = rest.get(CLIENT_ID_SUFFIX_LEN..).ok_or(KeyFormatError::BadCharacters)?;
        let secret_and_sum = tail.strip_prefix('_').ok_or(KeyFormatError::BadCharacters)?;
        let client_id = ClientId::from_suffix(client_part).ok_or(KeyFormatError::BadCharacters)?;
        if !secret_and_sum.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::BadCharacters);
        }
        let body = raw.get(..KEY_LEN - CHECKSUM_LEN).ok_or(KeyFormatError::BadCharacters)?;
        let sum = raw.get(KEY_LEN - CHECKSUM_LEN..).ok_or(KeyFormatError::BadCharacters)?;
        if checksum(body) != sum {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(Self { full: raw.to_string(), client_id })
    }

    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(hex_sha256(self.full.as_bytes()))
    }

    pub fn display_prefix(&self) -> String {
        self.full.get(..DISPLAY_PREFIX_LEN).unwrap_or_default().to_string()
    }

    /// The full key, for the one response that shows it to its owner.
    pub fn reveal(&self) -> &str {
        &self.full
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}…)", self.display_prefix())
    }
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientId {
        ClientId::from_suffix("abcdefghjkmnpqrs").unwrap()
    }

    #[test]
    fn generated_key_parses_back_to_its_client() {
        let key = ApiKey::generate(&client());
        let parsed = ApiKey::parse(key.reveal()).unwrap();
        assert_eq!(parsed.client_id(), &client());
        assert_eq!(parsed.hash(), key.hash());
        assert!(key.reveal().starts_with("vto_abcdefghjkmnpqrs_"));
        assert_eq!(key.reveal().len(), KEY_LEN);
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(ApiKey::generate(&client()).reveal(), ApiKey::generate(&client()).reveal());
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = ApiKey::generate(&client());
        let mut chars: Vec<char> = key.reveal().chars().collect();
        let i = KEY_LEN - CHECKSUM_LEN - 3;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(ApiKey::parse(&tampered), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        let key = ApiKey::generate(&client());
        assert_eq!(ApiKey::parse("demo_key_12345"), Err(KeyFormatError::WrongPrefix));
        assert_eq!(ApiKey::parse(&key.reveal()[..KEY_LEN - 1]), Err(KeyFormatError::WrongLength));
        let upper_client = key.reveal().replacen("abcdefghjkmnpqrs", "ABCDEFGHJKMNPQRS", 1);
        assert_eq!(ApiKey::parse(&upper_client), Err(KeyFormatError::BadCharacters));
        let with_symbol = format!("{}!{}", &key.reveal()[..30], &key.reveal()[31..]);
        assert_eq!(ApiKey::parse(&with_symbol), Err(KeyFormatError::BadCharacters));
    }

    #[test]
    fn a_key_with_a_multibyte_character_is_refused_not_a_panic() {
        // The review's key: the right byte length, with `é` straddling the
        // offset where the client id ends.
        let key = format!("vto_{}é_{}", "a".repeat(15), "A".repeat(37));
        assert_eq!(key.len(), KEY_LEN);
        assert_eq!(ApiKey::parse(&key), Err(KeyFormatError::BadCharacters));
        // And at every other offset.
        let valid = ApiKey::generate(&client());
        for i in KEY_PREFIX.len()..KEY_LEN - 1 {
            let mut bytes = valid.reveal().as_bytes().to_vec();
            bytes.splice(i..i + 2, "é".bytes());
            let shifted = String::from_utf8(bytes).unwrap();
            assert_eq!(shifted.len(), KEY_LEN);
            assert!(ApiKey::parse(&shifted).is_err(), "{shifted}");
        }
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let key = ApiKey::generate(&client());
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.reveal()[DISPLAY_PREFIX_LEN..]));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
