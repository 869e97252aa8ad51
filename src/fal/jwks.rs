//! FAL's webhook signing keys, fetched from its JWKS and kept for an hour in
//! the isolate. A signature that matches no cached key triggers one refetch
//! (FAL may have rotated), at most once a minute.

use super::client::get_public;
use super::webhook::keys_from_jwks;
use super::client::FalSettings;
use ed25519_dalek::VerifyingKey;
use std::cell::RefCell;

const MAX_AGE_MS: u64 = 3600 * 1000;
const MIN_REFETCH_MS: u64 = 60 * 1000;
const FETCH_TIMEOUT_MS: u64 = 5000;
/// A JWKS holds a handful of keys: well under a kilobyte each.
const MAX_JWKS_BYTES: usize = 64 * 1024;

thread_local! {
    static CACHE: RefCell<Option<(Vec<VerifyingKey>, u64)>> = const { RefCell::new(None) };
}

/// The cached keys, fetching them when absent or older than an hour, or —
/// with `refresh` — when the cache is more than a minute old.
pub async fn keys(fal: &FalSettings, now: u64, refresh: bool) -> Result<Vec<VerifyingKey>, String> {
    let cached = CACHE.with(|c| c.borrow().clone());
    if let Some((keys, fetched_at)) = &cached {
        let age = now.saturating_sub(*fetched_at);
        if age < MAX_AGE_MS && (!refresh || age < MIN_REFETCH_MS) {
            return Ok(keys.clone());
        }
    }
    let (status, body) = get_public(&fal.jwks_url, FETCH_TIMEOUT_MS, MAX_JWKS_BYTES).await.map_err(|f| f.describe())?;
    if status != 200 {
        return Err(format!("FAL's JWKS answered HTTP {status}"));
    }
    let keys = keys_from_jwks(&body)?;
    CACHE.with(|c| *c.borrow_mut() = Some((keys.clone(), now)));
    Ok(keys)
}
