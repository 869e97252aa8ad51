//! What the limiter knows of its client: a copy of D1 (keys, status, origins,
//! limits), replaced by the admin API on every change and reloaded from D1
//! when older than `SNAPSHOT_MAX_AGE_MS`. It decides access: is the key one of
//! the client's live keys, is the client active, is the `Origin` allowed.

use super::bucket::Rate;
use crate::domain::client::origin_allowed;
use crate::store::clients::ClientLimits;
use serde::{Deserialize, Serialize};

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
    pub loaded_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotKey {
    pub hash: String,
    pub expires_at: Option<u64>,
}

/// A safety net only: the admin API pushes every change synchronously.
pub const SNAPSHOT_MAX_AGE_MS: u64 = 10 * 60 * 1000;

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
            loaded_at: now,
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
            keys: limits.keys.into_iter().map(|k| SnapshotKey { hash: k.key_hash, expires_at: k.expires_at }).collect(),
            loaded_at: now,
        }
    }

    pub fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.loaded_at) > SNAPSHOT_MAX_AGE_MS || now < self.loaded_at.saturating_sub(SNAPSHOT_MAX_AGE_MS)
    }

    pub fn rate(&self) -> Rate {
        Rate::new(self.rate_limit_per_minute, self.rate_limit_burst)
    }

    fn accepts(&self, key_hash: &str, now: u64) -> bool {
        self.exists && self.keys.iter().any(|k| k.hash == key_hash && k.expires_at.is_none_or(|t| t > now))
    }

    /// The key, the client's status and the origin: what must pass before
    /// anything is taken or an idempotency key is looked at.
    pub fn check_access(&self, key_hash: &str, origin: Option<&str>, now: u64) -> Result<(), AccessDenied> {
        if !self.accepts(key_hash, now) {
            return Err(AccessDenied::InvalidKey);
        }
        if !self.active {
            return Err(AccessDenied::Inactive);
        }
        match origin {
            Some(origin) if !origin_allowed(&self.allowed_origins, origin) => Err(AccessDenied::OriginNotAllowed),
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
}
