//! Asynchronous try-on jobs: the record kept in KV under `job:{id}` (shaped
//! like the MVP's JobData, plus what FAL's queue returned), and its states.

use super::shopper::Metadata;
use super::result_url::ResultUrls;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Done,
    Error,
    Canceled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Error => "error",
            JobStatus::Canceled => "canceled",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Error | JobStatus::Canceled)
    }
}

/// Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    pub created_at: u64,
    pub fal_start: Option<u64>,
    pub fal_end: Option<u64>,
    pub completed_at: Option<u64>,
    pub image_url: Option<String>,
    pub error: Option<String>,
    pub client_id: String,
    pub garments_count: u64,
    pub model: String,
    pub description: Option<String>,
    pub queue_position: Option<u64>,
    /// What FAL's queue answered at submit time. The URLs are kept as given:
    /// FAL's status URLs drop the model's sub-path, so they cannot be rebuilt.
    pub fal: Option<FalQueueRefs>,
    /// The shopper it is for; a browser credential sees only its shopper's jobs.
    #[serde(default)]
    pub shopper_id: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalQueueRefs {
    pub request_id: String,
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
}

pub const JOB_ID_PREFIX: &str = "job_";
/// The route jobs come in on, as recorded on their generation rows.
pub const ENDPOINT: &str = "/api/jobs";

/// Job ids are `job_` + 20 [a-z0-9]; the generation recorded for a job has
/// the same suffix (`gen_…`), so a job can be recorded at most once.
pub fn is_job_id(id: &str) -> bool {
    id.strip_prefix(JOB_ID_PREFIX)
        .is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

pub fn generation_id_of(job_id: &str) -> String {
    format!("gen_{}", job_id.trim_start_matches(JOB_ID_PREFIX))
}

pub fn kv_key(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// The shortest expiration KV accepts.
pub const KV_MIN_TTL_S: u64 = 60;

/// Seconds a rewrite of the record should live so that it still disappears
/// `ttl_s` after the job was created (never less than KV's minimum).
pub fn remaining_ttl_s(created_at: u64, now: u64, ttl_s: u64) -> u64 {
    let elapsed_s = now.saturating_sub(created_at) / 1000;
    ttl_s.saturating_sub(elapsed_s).max(KV_MIN_TTL_S)
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum JobOutcome {
    Done { image_url: String, description: Option<String> },
    Failed { error: String },
    Canceled,
}

impl Job {
    /// The finished job. Timing: FAL's part runs from submission to `now`.
    pub fn finish(&mut self, outcome: &JobOutcome, now: u64) {
        self.fal_end = Some(now);
        self.completed_at = Some(now);
        self.queue_position = None;
        match outcome {
            JobOutcome::Done { image_url, description } => {
                self.status = JobStatus::Done;
                self.image_url = Some(image_url.clone());
                self.description = description.clone();
            }
            JobOutcome::Failed { error } => {
                self.status = JobStatus::Error;
                self.error = Some(error.clone());
            }
            JobOutcome::Canceled => {
                self.status = JobStatus::Canceled;
                self.error = Some("canceled by the client".into());
            }
        }
    }

    /// What a client sees of its job (times in ms since the epoch, as the
    /// MVP's JobData). `urls` mints the image's URL fresh for this read: ours
    /// (signed, served from our bucket), never FAL's, unless we cannot sign.
    pub fn view(&self, urls: &ResultUrls) -> serde_json::Value {
        let image_url = match self.status {
            JobStatus::Done => urls.link(&self.client_id, &generation_id_of(&self.id), self.image_url.as_deref()),
            _ => None,
        };
        serde_json::json!({
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "fal_start": self.fal_start,
            "fal_end": self.fal_end,
            "completed_at": self.completed_at,
            "image_url": image_url,
            "error": self.error,
            "client_id": self.client_id,
            "garments_count": self.garments_count,
            "model": self.model,
            "description": self.description,
            "queue_position": self.queue_position,
            "generation_id": self.status.is_finished().then(|| generation_id_of(&self.id)),
            "shopper_id": self.shopper_id,
            "metadata": self.metadata,
        })
    }

    /// Whether a read should ask FAL directly because no webhook has
    /// finished the job within `poll_after_ms` of its submission.
    pub fn should_poll(&self, now: u64, poll_after_ms: u64) -> bool {
        !self.status.is_finished()
            && self.fal.is_some()
            && now.saturating_sub(self.fal_start.unwrap_or(self.created_at)) >= poll_after_ms
    }
}

/// A queued job submitted to FAL at 1,000 ms, for the unit tests of the
/// modules that keep jobs.
#[cfg(test)]
pub(crate) fn sample() -> Job {
    Job {
        id: "job_abcdefghij0123456789".into(),
        status: JobStatus::Queued,
        created_at: 1_000,
        fal_start: Some(1_000),
        fal_end: None,
        completed_at: None,
        image_url: None,
        error: None,
        client_id: "cl_x".into(),
        garments_count: 1,
        model: "fal-virtual-try-on".into(),
        description: None,
        queue_position: Some(3),
        fal: Some(FalQueueRefs { request_id: "r".into(), status_url: "s".into(), response_url: "p".into(), cancel_url: "c".into() }),
        shopper_id: None,
        metadata: Metadata::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        sample()
    }

    #[test]
    fn job_ids_and_their_generation_ids() {
        assert!(is_job_id("job_abcdefghij0123456789"));
        assert!(!is_job_id("job_ABC"));
        assert!(!is_job_id("gen_abcdefghij0123456789"));
        assert_eq!(generation_id_of("job_abcdefghij0123456789"), "gen_abcdefghij0123456789");
    }

    #[test]
    fn status_names_match_their_json() {
        for s in [JobStatus::Queued, JobStatus::Processing, JobStatus::Done, JobStatus::Error, JobStatus::Canceled] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn rewrites_keep_the_original_expiry_but_respect_kvs_minimum() {
        assert_eq!(remaining_ttl_s(0, 0, 3600), 3600);
        assert_eq!(remaining_ttl_s(0, 600_000, 3600), 3000);
        assert_eq!(remaining_ttl_s(0, 3_590_000, 3600), 60);
    }

    #[test]
    fn finishing_sets_the_outcome_and_times() {
        let mut j = job();
        j.finish(&JobOutcome::Done { image_url: "https://x/y.png".into(), description: None }, 5_000);
        assert_eq!((j.status, j.completed_at, j.fal_end, j.queue_position), (JobStatus::Done, Some(5_000), Some(5_000), None));
        let mut j = job();
        j.finish(&JobOutcome::Canceled, 5_000);
        assert_eq!(j.status, JobStatus::Canceled);
        assert!(j.status.is_finished());
    }

    #[test]
    fn a_done_jobs_view_links_our_signed_url_not_fals() {
        let mut j = job();
        j.client_id = "cl_0123456789abcdef".into();
        let keys = crate::domain::signing::SigningKeys::parse("k1:0123456789abcdef0123456789abcdef").unwrap();
        let urls = ResultUrls::new(Some(&keys), "https://api.example", 3600, 5_000);
        assert_eq!(j.view(&urls)["image_url"], serde_json::Value::Null, "nothing before it is done");
        j.finish(&JobOutcome::Done { image_url: "https://v3.fal.media/x.png".into(), description: None }, 5_000);
        let shown = j.view(&urls)["image_url"].as_str().unwrap().to_string();
        assert!(shown.starts_with("https://api.example/v1/results/gen_abcdefghij0123456789?client=cl_0123456789abcdef&"), "{shown}");
        let unsigned = ResultUrls::new(None, "https://api.example", 3600, 5_000);
        assert_eq!(j.view(&unsigned)["image_url"], "https://v3.fal.media/x.png", "without keys, FAL's URL");
    }

    #[test]
    fn reads_poll_fal_only_for_unfinished_jobs_past_the_threshold() {
        let j = job();
        assert!(!j.should_poll(1_500, 1_000));
        assert!(j.should_poll(2_000, 1_000));
        let mut done = job();
        done.finish(&JobOutcome::Failed { error: "x".into() }, 1_100);
        assert!(!done.should_poll(10_000, 1_000));
    }
}
