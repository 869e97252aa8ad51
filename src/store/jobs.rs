//! Job records in KV under `job:{id}`, each living `JOB_TTL_SECONDS` from
//! its creation. KV is eventually consistent across locations; see the
//! README for what the job API guarantees and how reads fall back to FAL.

use crate::domain::job::{kv_key, remaining_ttl_s, Job};
use crate::error::{ApiError, ApiResult};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::kv::KvStore;
use worker::Date;

/// KV accepts one write per key per second
/// (https://developers.cloudflare.com/kv/platform/limits); local KV does not
/// enforce it, so development can turn this on to see the refusals production gives.
const SAME_KEY_WRITE_INTERVAL_MS: u64 = 1_000;

thread_local! {
    static LAST_WRITES: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

#[derive(Clone)]
pub struct JobStore {
    kv: KvStore,
    /// Refuse a second write to a key within a second, as production KV does.
    enforce_write_rate: bool,
}

impl JobStore {
    pub fn new(kv: KvStore, enforce_write_rate: bool) -> Self {
        Self { kv, enforce_write_rate }
    }

    fn check_write_rate(&self, key: &str) -> ApiResult<()> {
        if !self.enforce_write_rate {
            return Ok(());
        }
        let now = Date::now().as_millis();
        LAST_WRITES.with(|w| {
            let mut writes = w.borrow_mut();
            if writes.len() > 10_000 {
                writes.retain(|_, at| now < *at + SAME_KEY_WRITE_INTERVAL_MS);
            }
            match writes.get(key) {
                Some(at) if now < at + SAME_KEY_WRITE_INTERVAL_MS => {
                    Err(ApiError::Internal(format!("KV: 429 too many writes to {key} (local emulation of KV's per-key write rate)")))
                }
                _ => {
                    writes.insert(key.to_string(), now);
                    Ok(())
                }
            }
        })
    }

    pub async fn get(&self, id: &str) -> ApiResult<Option<Job>> {
        let text = self.kv.get(&kv_key(id)).text().await.map_err(kv_error)?;
        match text {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| ApiError::Internal(format!("job {id} is unreadable: {e}"))),
        }
    }

    /// Writes the job so that it still expires `ttl_s` after its creation.
    pub async fn put(&self, job: &Job, now: u64, ttl_s: u64) -> ApiResult<()> {
        let body = serde_json::to_string(job)?;
        self.check_write_rate(&kv_key(&job.id))?;
        self.kv
            .put(&kv_key(&job.id), body)
            .map_err(kv_error)?
            .expiration_ttl(remaining_ttl_s(job.created_at, now, ttl_s))
            .execute()
            .await
            .map_err(kv_error)
    }
}

impl JobStore {
    pub async fn delete(&self, id: &str) -> ApiResult<()> {
        self.kv.delete(&kv_key(id)).await.map_err(kv_error)
    }
}

fn kv_error(e: impl std::fmt::Debug) -> ApiError {
    ApiError::Internal(format!("KV: {e:?}"))
}
