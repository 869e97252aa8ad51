//! Client callbacks: which event a finished job is, the body a client
//! receives (`{"type","timestamp","data"}`), and the Standard Webhooks
//! headers of one attempt.

use crate::domain::callback::signature;
use crate::domain::event::EventType;
use crate::domain::job::{Job, JobStatus};
use crate::domain::time::to_rfc3339;
use serde_json::{json, Value};

/// `job.completed` or `job.failed`; a canceled job is not reported (the
/// client canceled it, so it already knows).
pub fn job_event(job: &Job) -> Option<EventType> {
    match job.status {
        JobStatus::Done => Some(EventType::JobCompleted),
        JobStatus::Error => Some(EventType::JobFailed),
        _ => None,
    }
}

/// The `webhook-id` of the event about `subject_id` (a job or generation
/// id): the same on every attempt and redelivery, so receivers can drop
/// duplicates.
pub fn event_id(subject_id: &str) -> String {
    format!("msg_{subject_id}")
}

/// The body, fixed when the event happens: `timestamp` is the event's time,
/// not the attempt's (the attempt's is in the `webhook-timestamp` header).
pub fn body(event: EventType, happened_at_ms: u64, data: Value) -> String {
    json!({ "type": event.as_str(), "timestamp": to_rfc3339(happened_at_ms), "data": data }).to_string()
}

/// The headers of one attempt, signed afresh with the attempt's own
/// timestamp, which receivers check against their clock.
pub fn signed_headers(secret: &[u8], event_id: &str, attempt_time_s: u64, body: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), "tryon-webhooks/1".into()),
        ("webhook-id".into(), event_id.into()),
        ("webhook-timestamp".into(), attempt_time_s.to_string()),
        ("webhook-signature".into(), signature(secret, event_id, attempt_time_s, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap()
    }

    #[test]
    fn each_attempt_keeps_the_id_and_signs_its_own_timestamp() {
        let body = body(EventType::JobCompleted, 1_700_000_000_000, json!({"id": "job_1"}));
        let first = signed_headers(b"secret", "msg_job_1", 1_700_000_000, &body);
        let retry = signed_headers(b"secret", "msg_job_1", 1_700_000_030, &body);
        assert_eq!(header(&first, "webhook-id"), header(&retry, "webhook-id"));
        assert_ne!(header(&first, "webhook-signature"), header(&retry, "webhook-signature"));
        assert_eq!(header(&retry, "webhook-timestamp"), "1700000030");
        assert_eq!(header(&retry, "webhook-signature"), signature(b"secret", "msg_job_1", 1_700_000_030, &body));
    }

    #[test]
    fn the_body_carries_the_type_the_events_time_and_the_data() {
        let parsed: Value = serde_json::from_str(&body(EventType::JobFailed, 0, json!({"id": "job_1"}))).unwrap();
        assert_eq!(parsed, json!({"type": "job.failed", "timestamp": "1970-01-01T00:00:00.000Z", "data": {"id": "job_1"}}));
        assert_eq!(event_id("gen_abc"), "msg_gen_abc");
    }
}
