//! Identifiers and randomness. Randomness comes from `getrandom`, which is the
//! Web Crypto `getRandomValues` inside Workers and the OS generator on the host.

pub const CLIENT_ID_PREFIX: &str = "cl_";
pub const CLIENT_ID_SUFFIX_LEN: usize = 16;
const LOWER_ALNUM: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).expect("the platform random generator is available");
    buf
}

/// Uniform characters from `alphabet` by rejection sampling (no modulo bias).
fn random_from(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>() {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

pub fn random_base62(len: usize) -> String {
    random_from(BASE62, len)
}

/// A prefixed random id such as `gen_…`, `key_…`, `job_…` (≈103 bits).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_from(LOWER_ALNUM, 20))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(format!("{CLIENT_ID_PREFIX}{}", random_from(LOWER_ALNUM, CLIENT_ID_SUFFIX_LEN)))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::from_suffix(raw.strip_prefix(CLIENT_ID_PREFIX)?)
    }

    pub fn from_suffix(suffix: &str) -> Option<Self> {
        let ok = suffix.len() == CLIENT_ID_SUFFIX_LEN
            && suffix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        ok.then(|| Self(format!("{CLIENT_ID_PREFIX}{suffix}")))
    }

    pub fn suffix(&self) -> &str {
        self.0.get(CLIENT_ID_PREFIX.len()..).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_reject_foreign_shapes() {
        let id = ClientId::generate();
        assert_eq!(ClientId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(ClientId::parse("client_001"), None);
        assert_eq!(ClientId::parse("cl_ABCDEFGHIJKLMNOP"), None);
        assert_eq!(ClientId::parse("cl_short"), None);
    }

    #[test]
    fn ids_have_their_prefix_and_are_unique() {
        let a = new_id("gen");
        assert!(a.starts_with("gen_") && a.len() == 24);
        assert_ne!(a, new_id("gen"));
    }
}
