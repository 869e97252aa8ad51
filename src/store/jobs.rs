//! Job records in KV under `job:{id}`, each living `JOB_TTL_SECONDS` from
//! its creation. KV is eventually consistent across locations; see the
//! README for what the job API guarantees and how reads fall back to FAL.

use crate::domain::job::{kv_key, remaining_ttl_s, Job};
use crate::error::{ApiError, ApiResult};
use worker::kv::KvStore;

#[derive(Clone)]
pub struct JobStore {
    kv: KvStore,
}

impl JobStore {
    pub fn new(kv: KvStore) -> Self {
        Self { kv }
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
        self.kv
            .put(&kv_key(&job.id), body)
            .map_err(kv_error)?
            .expiration_ttl(remaining_ttl_s(job.created_at, now, ttl_s))
            .execute()
            .await
            .map_err(kv_error)
    }
}

fn kv_error(e: impl std::fmt::Debug) -> ApiError {
    ApiError::Internal(format!("KV: {e:?}"))
}
