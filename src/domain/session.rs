//! Admin sessions: random tokens that only ever exist in the admin's cookie.
//! Storage keeps an HMAC of each token keyed by the digest of the current
//! `ADMIN_PASSWORD`, so changing the password ends every session (their
//! keys no longer match anything stored) and the password itself is never
//! stored. A session ends at an absolute expiry or after an idle period,
//! whichever comes first.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `__Host-`: browsers accept the cookie only if it is `Secure`, has
/// `Path=/` and no `Domain`, so a sibling subdomain cannot set or shadow it.
pub const COOKIE_NAME: &str = "__Host-vto_admin_session";
pub const ABSOLUTE_LIFETIME_MS: u64 = 7 * 24 * 3600 * 1000;
/// Refreshing `last_seen_at` on every request would cost a write per admin
/// call; a minute's granularity is plenty for an idle timeout counted in hours.
pub const TOUCH_INTERVAL_MS: u64 = 60 * 1000;

pub struct SessionToken(String);

impl SessionToken {
    /// 256 random bits, base64url without padding.
    pub fn generate() -> Self {
        let bytes = super::ids::random_bytes::<32>();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Takes a token from a cookie; anything that could not be one of ours is refused
    /// before storage is asked.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 43 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_string()))
    }

    /// The key storage knows the session by: HMAC-SHA256 of the token under
    /// the digest of the admin password in force.
    pub fn storage_key(&self, password_digest: &[u8; 32]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(password_digest) {
            Ok(mac) => mac,
            Err(_) => return String::new(), // unreachable: HMAC takes keys of any length
        };
        mac.update(self.0.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn set_cookie(&self, max_age_ms: u64) -> String {
        format!(
            "{COOKIE_NAME}={}; Max-Age={}; Path=/; HttpOnly; Secure; SameSite=Strict",
            self.0,
            max_age_ms / 1000
        )
    }
}

pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict")
}

/// Finds our cookie in a `Cookie` header.
pub fn token_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    pub created_at: u64,
    pub last_seen_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SessionState {
    Valid { touch: bool },
    Expired,
    Idle,
}

pub fn session_state(times: SessionTimes, now: u64, idle_timeout_ms: u64) -> SessionState {
    if now >= times.expires_at {
        SessionState::Expired
    } else if now >= times.last_seen_at.saturating_add(idle_timeout_ms) {
        SessionState::Idle
    } else {
        SessionState::Valid { touch: now >= times.last_seen_at.saturating_add(TOUCH_INTERVAL_MS) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_parse_back() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a.0, b.0);
        assert!(SessionToken::parse(&a.0).is_some());
        assert!(SessionToken::parse("authenticated").is_none());
        assert_eq!(a.storage_key(&[1; 32]).len(), 64);
    }

    #[test]
    fn a_new_admin_password_gives_every_token_a_new_storage_key() {
        let t = SessionToken::generate();
        assert_eq!(t.storage_key(&[1; 32]), t.storage_key(&[1; 32]));
        assert_ne!(t.storage_key(&[1; 32]), t.storage_key(&[2; 32]));
        assert_ne!(t.storage_key(&[1; 32]), SessionToken::generate().storage_key(&[1; 32]));
    }

    #[test]
    fn cookie_is_strict_and_found_among_others() {
        let t = SessionToken::generate();
        let c = t.set_cookie(ABSOLUTE_LIFETIME_MS);
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
            assert!(c.contains(attr), "{attr}");
        }
        assert!(c.starts_with("__Host-") && !c.contains("Domain"));
        assert!(clear_cookie().starts_with("__Host-") && clear_cookie().contains("Secure; SameSite=Strict"));
        let header = format!("theme=dark; {COOKIE_NAME}={}; other=1", t.0);
        assert_eq!(token_from_cookie_header(&header), Some(t.0.as_str()));
        assert_eq!(token_from_cookie_header("theme=dark"), None);
    }

    #[test]
    fn sessions_end_at_expiry_or_after_idling() {
        let t = SessionTimes { created_at: 0, last_seen_at: 1_000, expires_at: 100_000 };
        assert_eq!(session_state(t, 2_000, 50_000), SessionState::Valid { touch: false });
        assert_eq!(session_state(t, 1_000 + TOUCH_INTERVAL_MS, 90_000), SessionState::Valid { touch: true });
        assert_eq!(session_state(t, 51_000, 50_000), SessionState::Idle);
        assert_eq!(session_state(t, 100_000, 1_000_000), SessionState::Expired);
    }
}
