//! Live job state, kept in the client's object where every change is
//! strongly consistent and ordered: a job's status only moves forward, never
//! back from a final state; each visible change bumps its version (the id of
//! its status event); and the object hands out leases so that, however many
//! readers a job has, FAL is asked about it at most once per interval.

use crate::domain::job::{Job, JobOutcome, JobStatus};
use serde::{Deserialize, Serialize};

/// FAL's status URL is asked about one job at most this often, whatever the
/// number of readers (a shop looping on `GET /api/jobs/{id}` included).
pub const POLL_INTERVAL_MS: u64 = 3_000;
/// A stream follower renews its lease on every status it reports; one that
/// stops reporting for this long is presumed gone and another may follow.
pub const FOLLOW_LEASE_MS: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveJob {
    pub job: Job,
    /// Bumped on every change a reader can see; the `id:` of its event.
    pub version: u64,
    /// When the record is forgotten (the job's TTL after its creation).
    pub expires_ms: u64,
    /// The last time someone was allowed to ask FAL about it (0: never, so
    /// the first ask comes as soon as `poll_after_ms` has passed).
    pub polled_ms: u64,
    /// Until then, a reader follows FAL's status stream for everyone.
    pub follow_until: u64,
}

impl LiveJob {
    pub fn new(job: Job, ttl_ms: u64) -> Self {
        let created = job.created_at;
        Self { job, version: 1, expires_ms: created + ttl_ms, polled_ms: 0, follow_until: 0 }
    }

    /// FAL says the job is queued (at `position`) or running. Returns whether
    /// anything visible changed. A finished job stays finished.
    pub fn progress(&mut self, status: JobStatus, position: Option<u64>) -> bool {
        if self.job.status.is_finished() || status.is_finished() {
            return false;
        }
        // Running never goes back to queued (FAL's answers may cross in flight).
        let status = if self.job.status == JobStatus::Processing { JobStatus::Processing } else { status };
        let position = if status == JobStatus::Queued { position } else { None };
        if (self.job.status, self.job.queue_position) == (status, position) {
            return false;
        }
        self.job.status = status;
        self.job.queue_position = position;
        self.version += 1;
        true
    }

    /// Ends the job, unless it already ended. Returns whether this call ended it.
    pub fn finish(&mut self, outcome: &JobOutcome, now: u64) -> bool {
        if self.job.status.is_finished() {
            return false;
        }
        self.job.finish(outcome, now);
        self.version += 1;
        true
    }

    /// Whether the caller may ask FAL about the job now (and so nobody else
    /// may for `POLL_INTERVAL_MS`): only for an unfinished job no webhook has
    /// ended within `poll_after_ms`.
    pub fn take_poll_lease(&mut self, now: u64, poll_after_ms: u64) -> bool {
        let rested = self.polled_ms == 0 || now.saturating_sub(self.polled_ms) >= POLL_INTERVAL_MS;
        let due = self.job.should_poll(now, poll_after_ms) && rested;
        if due {
            self.polled_ms = now;
        }
        due
    }

    /// Whether the caller should follow FAL's status stream for this job.
    pub fn take_follow_lease(&mut self, now: u64) -> bool {
        if self.job.status.is_finished() || self.job.fal.is_none() || self.follow_until > now {
            return false;
        }
        self.follow_until = now + FOLLOW_LEASE_MS;
        true
    }

    pub fn renew_follow_lease(&mut self, now: u64) {
        self.follow_until = now + FOLLOW_LEASE_MS;
    }
}

/// A job as a reader gets it: its state, the version of that state, and
/// whether this reader was chosen to ask FAL about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub job: Job,
    pub version: u64,
    #[serde(default)]
    pub poll: bool,
}

impl LiveJob {
    pub fn state(&self, poll: bool) -> JobState {
        JobState { job: self.job.clone(), version: self.version, poll }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> LiveJob {
        let job = Job { queue_position: Some(2), ..crate::domain::job::sample() };
        LiveJob::new(job, 3_600_000)
    }

    #[test]
    fn progress_moves_forward_and_bumps_the_version_only_on_change() {
        let mut j = live();
        assert!(!j.progress(JobStatus::Queued, Some(2)), "nothing new");
        assert!(j.progress(JobStatus::Queued, Some(1)));
        assert!(j.progress(JobStatus::Processing, None));
        assert!(!j.progress(JobStatus::Queued, Some(0)), "running never goes back to queued");
        assert_eq!((j.job.status, j.version), (JobStatus::Processing, 3));
    }

    #[test]
    fn a_finished_job_never_goes_back() {
        let mut j = live();
        assert!(j.finish(&JobOutcome::Done { image_url: "https://x/y.png".into(), description: None }, 5_000));
        assert!(!j.progress(JobStatus::Processing, None), "a late poll cannot unfinish it");
        assert!(!j.finish(&JobOutcome::Failed { error: "late".into() }, 6_000), "nor can a late failure");
        assert_eq!((j.job.status, j.version), (JobStatus::Done, 2));
    }

    #[test]
    fn one_reader_per_interval_may_ask_fal() {
        let mut j = live();
        assert!(!j.take_poll_lease(1_500, 1_000), "too soon after creation");
        assert!(j.take_poll_lease(2_000, 1_000), "the first ask comes at the threshold");
        assert!(!j.take_poll_lease(4_900, 1_000), "another reader in the same interval");
        assert!(j.take_poll_lease(5_000, 1_000));
    }

    #[test]
    fn one_follower_at_a_time_until_its_lease_lapses() {
        let mut j = live();
        assert!(j.take_follow_lease(1_000));
        assert!(!j.take_follow_lease(2_000));
        assert!(j.take_follow_lease(1_000 + FOLLOW_LEASE_MS));
        j.finish(&JobOutcome::Canceled, 50_000);
        assert!(!j.take_follow_lease(100_000), "nothing to follow once finished");
    }
}
