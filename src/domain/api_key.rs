//! API keys: secret keys `vto_<client id>_<secret><checksum>` for a shop's
//! servers, and publishable keys `vto_pk_<client id>_<secret><checksum>` for
//! its pages (public by design: they only work from the client's allowed
//! origins, with a browser's narrow scope). The difference shows in the key.
//!
//! The key carries the client id so the client's limiter object can be found
//! without a database lookup, a recognisable prefix so secret scanners can spot
//! leaked keys, and a CRC32 checksum so a mistyped or truncated key is refused
//! before any storage is touched. Only the SHA-256 of the whole key is stored.

use super::ids::{random_base62, ClientId, BASE62, CLIENT_ID_SUFFIX_LEN};
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "vto_";
pub const PUBLISHABLE_PREFIX: &str = "vto_pk_";
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// What follows the prefix: `<client>_<secret><checksum>`.
const TAIL_LEN: usize = CLIENT_ID_SUFFIX_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
/// How much of a secret key is kept for display (`vto_<client>_<4 chars>`):
/// enough to tell keys apart in the dashboard, far too little to guess the rest.
const DISPLAY_TAIL_LEN: usize = CLIENT_ID_SUFFIX_LEN + 1 + 4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// For a shop's servers: everything its client may do.
    #[default]
    Secret,
    /// For a shop's pages: generations for a shopper, from allowed origins only.
    Publishable,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "secret" => Some(KeyKind::Secret),
            "publishable" => Some(KeyKind::Publishable),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => KEY_PREFIX,
            KeyKind::Publishable => PUBLISHABLE_PREFIX,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    full: String,
    client_id: ClientId,
    kind: KeyKind,
    /// Computed once: a request asks for it several times (the isolate's
    /// refusal memory, the limiter call, the admission memory, D1 queries).
    hash: KeyHash,
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
    pub fn generate(client_id: &ClientId, kind: KeyKind) -> Self {
        let body = format!("{}{}_{}", kind.prefix(), client_id.suffix(), random_base62(SECRET_LEN));
        let full = format!("{body}{}", checksum(&body));
        Self::with_hash(full, client_id.clone(), kind)
    }

    /// Total on any input: lengths are checked on ASCII only, so no split
    /// can land inside a character.
    pub fn parse(raw: &str) -> Result<Self, KeyFormatError> {
        let (kind, rest) = match (raw.strip_prefix(PUBLISHABLE_PREFIX), raw.strip_prefix(KEY_PREFIX)) {
            (Some(rest), _) => (KeyKind::Publishable, rest),
            (None, Some(rest)) => (KeyKind::Secret, rest),
            (None, None) => return Err(KeyFormatError::WrongPrefix),
        };
        // Every slice below is at a byte offset, so the key must be ASCII
        // first: one multi-byte character would put an offset inside it (the
        // prefixes are ASCII, so checking the rest checks the whole key).
        if !rest.is_ascii() {
            return Err(KeyFormatError::BadCharacters);
        }
        if rest.len() != TAIL_LEN {
            return Err(KeyFormatError::WrongLength);
        }
        let client_part = rest.get(..CLIENT_ID_SUFFIX_LEN).ok_or(KeyFormatError::BadCharacters)?;
        let tail = rest.get(CLIENT_ID_SUFFIX_LEN..).ok_or(KeyFormatError::BadCharacters)?;
        let secret_and_sum = tail.strip_prefix('_').ok_or(KeyFormatError::BadCharacters)?;
        let client_id = ClientId::from_suffix(client_part).ok_or(KeyFormatError::BadCharacters)?;
        if !secret_and_sum.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::BadCharacters);
        }
        let (body, sum) = raw.len().checked_sub(CHECKSUM_LEN).and_then(|at| raw.split_at_checked(at)).ok_or(KeyFormatError::WrongLength)?;
        if checksum(body) != sum {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(Self::with_hash(raw.to_string(), client_id, kind))
    }

    fn with_hash(full: String, client_id: ClientId, kind: KeyKind) -> Self {
        let hash = KeyHash(hex_sha256(full.as_bytes()));
        Self { full, client_id, kind, hash }
    }

    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn hash(&self) -> KeyHash {
        self.hash.clone()
    }

    /// What the dashboard shows of a secret key (a publishable key is shown whole).
    pub fn display_prefix(&self) -> String {
        let len = self.kind.prefix().len() + DISPLAY_TAIL_LEN;
        self.full.get(..len).unwrap_or_default().to_string()
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
        let key = ApiKey::generate(&client(), KeyKind::Secret);
        let parsed = ApiKey::parse(key.reveal()).unwrap();
        assert_eq!(parsed.client_id(), &client());
        assert_eq!(parsed.hash(), key.hash());
        assert!(key.reveal().starts_with("vto_abcdefghjkmnpqrs_"));
        assert_eq!(key.reveal().len(), KEY_PREFIX.len() + TAIL_LEN);
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(ApiKey::generate(&client(), KeyKind::Secret).reveal(), ApiKey::generate(&client(), KeyKind::Secret).reveal());
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = ApiKey::generate(&client(), KeyKind::Secret);
        let mut chars: Vec<char> = key.reveal().chars().collect();
        let i = key.reveal().len() - CHECKSUM_LEN - 3;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(ApiKey::parse(&tampered), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        let key = ApiKey::generate(&client(), KeyKind::Secret);
        assert_eq!(ApiKey::parse("demo_key_12345"), Err(KeyFormatError::WrongPrefix));
        assert_eq!(ApiKey::parse(&key.reveal()[..key.reveal().len() - 1]), Err(KeyFormatError::WrongLength));
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
        assert_eq!(key.len(), KEY_PREFIX.len() + TAIL_LEN);
        assert_eq!(ApiKey::parse(&key), Err(KeyFormatError::BadCharacters));
        // And at every other offset.
        for kind in [KeyKind::Secret, KeyKind::Publishable] {
            let valid = ApiKey::generate(&client(), kind);
            let len = valid.reveal().len();
            for i in kind.prefix().len()..len - 1 {
                let mut bytes = valid.reveal().as_bytes().to_vec();
                bytes.splice(i..i + 2, "é".bytes());
                let shifted = String::from_utf8(bytes).unwrap();
                assert_eq!(shifted.len(), len);
                assert!(ApiKey::parse(&shifted).is_err(), "{shifted}");
            }
        }
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let key = ApiKey::generate(&client(), KeyKind::Secret);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.reveal()[KEY_PREFIX.len() + DISPLAY_TAIL_LEN..]));
    }

    #[test]
    fn publishable_keys_say_so_and_parse_back_as_such() {
        let key = ApiKey::generate(&client(), KeyKind::Publishable);
        assert!(key.reveal().starts_with("vto_pk_abcdefghjkmnpqrs_"));
        let parsed = ApiKey::parse(key.reveal()).unwrap();
        assert_eq!((parsed.kind(), parsed.client_id()), (KeyKind::Publishable, &client()));
        assert_eq!(ApiKey::parse(ApiKey::generate(&client(), KeyKind::Secret).reveal()).unwrap().kind(), KeyKind::Secret);
        // The checksum covers the prefix: a publishable key stripped of `pk_` is no secret key.
        assert_eq!(ApiKey::parse(&key.reveal().replacen("vto_pk_", "vto_", 1)), Err(KeyFormatError::BadChecksum));
    }

    #[test]
    fn non_ascii_keys_are_refused_without_panicking() {
        // The split after the client id would land inside `é` if lengths were counted in bytes.
        let raw = format!("vto_{}é_{}", "a".repeat(15), "A".repeat(37));
        assert_eq!(ApiKey::parse(&raw), Err(KeyFormatError::BadCharacters));
        for raw in ["vto_é", "vto_pk_日本", "vto_\u{0}", "vto_pk_"] {
            assert!(ApiKey::parse(raw).is_err());
        }
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
