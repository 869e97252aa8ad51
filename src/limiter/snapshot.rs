//! What the limiter knows of its client: a copy of D1 (keys, status, origins,
//! limits), replaced by the admin API on every change and reloaded from D1
//! when older than `SNAPSHOT_MAX_AGE_MS`. It decides access: is the key one of
//! the client's live keys, is the client active, is the `Origin` allowed.

use super::bucket::Rate;
use super::widget::WidgetLimits;
use crate::domain::api_key::KeyKind;
use crate::domain::client::origin_allowed;
use crate::store::clients::ClientLimits;
use serde::{Deserialize, Serialize};

/// Which credential a request presents (the worker knows from its form).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    #[default]
    Secret,
    Publishable,
    /// A widget session token the worker verified; `key_hash` is empty.
    WidgetToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSnapshot {
    pub client_id: String,
    /// False when D1 has no such client (a forged key naming a made-up client).
    pub exists: bool,
    pub name: String,
    pub active: bool,
    pub usage_limit: u64,
    pub rate_limit_per_minute: u64,
    pub rate_limit_burst: Option<u64>,
    pub max_concurrent: u64,
    pub allowed_origins: Vec<String>,
    pub keys: Vec<SnapshotKey>,
    /// Limits on browser traffic (publishable keys, widget tokens).
    #[serde(default)]
    pub widget: WidgetLimits,
    pub loaded_at: u64,
    /// D1's `snapshot_version` of the client when this copy was read; bumped
    /// by every admin change, so the object can refuse an older copy.
    #[serde(default)]
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotKey {
    pub hash: String,
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub kind: KeyKind,
}

/// The admin API pushes every change synchronously; this bounds how long a
/// change whose push failed can go unseen (one D1 read per client a minute).
pub const SNAPSHOT_MAX_AGE_MS: u64 = 60 * 1000;

impl ClientSnapshot {
    pub fn missing(client_id: &str, now: u64) -> Self {
        Self {
            client_id: client_id.to_string(),
            exists: false,
            name: String::new(),
            active: false,
            usage_limit: 0,
            rate_limit_per_minute: 1,
            rate_limit_burst: None,
            max_concurrent: 0,
            allowed_origins: Vec::new(),
            keys: Vec::new(),
            widget: WidgetLimits::default(),
            loaded_at: now,
            version: 0,
        }
    }

    /// The copy of D1's `limits` for `client_id`, read at `now`.
    pub fn from_store(client_id: &str, limits: ClientLimits, now: u64) -> Self {
        let Some(row) = limits.row else { return Self::missing(client_id, now) };
        Self {
            client_id: row.id.clone(),
            exists: true,
            active: row.is_active(),
            usage_limit: row.usage_limit,
            rate_limit_per_minute: row.rate_limit_per_minute,
            rate_limit_burst: row.rate_limit_burst,
            max_concurrent: row.max_concurrent,
            allowed_origins: row.origins(),
            name: row.name,
            keys: limits
                .keys
                .into_iter()
                .map(|k| SnapshotKey { hash: k.key_hash, expires_at: k.expires_at, kind: KeyKind::parse(&k.kind).unwrap_or_default() })
                .collect(),
            widget: WidgetLimits {
                widget_rate_limit_per_minute: row.widget_rate_limit_per_minute,
                shopper_rate_limit_per_minute: row.shopper_rate_limit_per_minute,
                shopper_daily_limit: row.shopper_daily_limit,
            },
            loaded_at: now,
            version: row.snapshot_version,
        }
    }

    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.loaded_at) > SNAPSHOT_MAX_AGE_MS || now < self.loaded_at.saturating_sub(SNAPSHOT_MAX_AGE_MS)
    }

    pub fn rate(&self) -> Rate {
        Rate::new(self.rate_limit_per_minute, self.rate_limit_burst)
    }

    fn accepts(&self, key_hash: &str, kind: KeyKind, now: u64) -> bool {
        self.exists && self.keys.iter().any(|k| k.hash == key_hash && k.kind == kind && k.expires_at.is_none_or(|t| t > now))
    }

    /// The credential, the client's status and the origin: what must pass
    /// before anything is taken or an idempotency key is looked at. A secret
    /// key may come from anywhere (a request with an `Origin` must be from
    /// an allowed one); a browser credential only from an allowed origin. A
    /// widget token's signature and expiry were checked by the worker, which
    /// needs no storage for that; here only the client and origin are.
    pub fn check_access(&self, credential: Credential, key_hash: &str, origin: Option<&str>, now: u64) -> Result<(), AccessDenied> {
        let known = match credential {
            Credential::Secret => self.accepts(key_hash, KeyKind::Secret, now),
            Credential::Publishable => self.accepts(key_hash, KeyKind::Publishable, now),
            Credential::WidgetToken => self.exists,
        };
        if !known {
            return Err(AccessDenied::InvalidKey);
        }
        if !self.active {
            return Err(AccessDenied::Inactive);
        }
        match (origin, credential) {
            (Some(origin), _) if !origin_allowed(&self.allowed_origins, origin) => Err(AccessDenied::OriginNotAllowed),
            (None, Credential::Publishable | Credential::WidgetToken) => Err(AccessDenied::OriginRequired),
            _ => Ok(()),
        }
    }
}

/// Why `check_access` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDenied {
    InvalidKey,
    Inactive,
    OriginNotAllowed,
    /// A browser credential without an `Origin`: not from a page at all.
    OriginRequired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_read_again_once_it_is_over_a_minute_old_or_the_clock_went_back_a_minute() {
        let loaded = 10_000_000;
        let copy = ClientSnapshot::missing("cl_x", loaded);
        assert!(!copy.is_stale(loaded + SNAPSHOT_MAX_AGE_MS), "a minute old: still used");
        assert!(copy.is_stale(loaded + SNAPSHOT_MAX_AGE_MS + 1), "a minute and a millisecond: read again");
        assert!(!copy.is_stale(loaded - SNAPSHOT_MAX_AGE_MS), "a clock a minute behind: still used");
        assert!(copy.is_stale(loaded - SNAPSHOT_MAX_AGE_MS - 1), "further behind: read again");
        assert_eq!(SNAPSHOT_MAX_AGE_MS, 60_000);
    }
}
