//! API keys as the README describes them: `vto_<client id>_<32 base62><6-char
//! CRC32 checksum>`. Written here from that description, to forge keys that
//! are well-formed but were never issued.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The checksum: CRC32 of everything before it, in 6 base62 digits.
fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// A key for `client_id` (`cl_…`) with a valid checksum and the given secret.
pub fn well_formed(client_id: &str, secret: &str) -> String {
    assert_eq!(secret.len(), 32);
    let body = format!("vto_{}_{secret}", client_id.trim_start_matches("cl_"));
    format!("{body}{}", checksum(&body))
}

/// The same key with its checksum broken (one character changed).
pub fn with_bad_checksum(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}
