//! Faults the emulator can be told to produce. A fault applies to requests
//! whose body contains its `match` string, so tests sharing one emulator each
//! fail only their own requests (they put a unique marker in an image URL).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// HTTP 500 with a FAL-shaped `{"detail": ...}`.
    Error500,
    /// HTTP 422 with FAL's validation-error list.
    Error422,
    /// HTTP 400 with a FAL-shaped `{"detail": "..."}`, as FAL refuses a
    /// request it cannot use (a file it cannot fetch, say) before validating it.
    Error400,
    /// HTTP 401, as FAL answers a bad key.
    Unauthorized,
    /// HTTP 429.
    RateLimited,
    /// Never answer (well, not for an hour).
    Hang,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Answer normally after `delay_ms`.
    Slow,
    /// Queue: the request completes but its webhook is never sent.
    WebhookNever,
    /// Queue: the webhook is delivered twice.
    WebhookTwice,
    /// Queue: the webhook is delivered `delay_ms` after completion.
    WebhookLate,
    /// Queue: the webhook is signed with a key that is not in the JWKS.
    WebhookBadSignature,
    /// Queue: the status says COMPLETED, but the result is a FAL error.
    ErrorAfterCompleted,
    /// Queue: `/status/stream` sends its first event and then ends without
    /// COMPLETED, so a client has to fall back to polling the status URL.
    StreamDrop,
    /// A 200 with its headers and a `Content-Length`, part of the body, then
    /// the connection is dropped. On the queue it cuts the result fetch.
    ResetMidBody,
    /// The connection closes without any response. On the queue it cuts the
    /// result fetch.
    CloseWithoutAnswer,
    /// A normal output whose `images[0].url` serves an HTML page labelled
    /// `image/png`.
    NonImageResult,
    /// A normal output whose file is `delay_ms` bytes (30 MiB when 0): a PNG
    /// signature and header followed by padding.
    HugeResult,
    /// A normal output whose file is a padded PNG of `delay_ms` bytes (1 MiB
    /// when 0), sent in chunks without a `Content-Length`, as a CDN that
    /// compresses or transcodes on the fly does: its size is known only once
    /// it has all arrived.
    ChunkedResult,
    /// A normal output whose file answers 404, as when FAL has deleted its copy.
    ResultGone,
    /// Queue: the request waits `delay_ms` IN_QUEUE before
    /// running, so a client can watch it move from queued to running.
    SlowQueue,
    /// Sync: a 200 whose JSON is `delay_ms` bytes (3 MiB when 0), padded in
    /// `description`: larger than any real answer, so a size cap must refuse it.
    HugeAnswer,
    /// Sync: a 307 to `/_emulator/key-sink`, which records whether the
    /// redirected request still carried the FAL key.
    Redirect,
    /// Queue: the submission's status, response and cancel URLs point at
    /// another origin (`localhost` instead of `127.0.0.1`, same server), as a
    /// compromised or spoofed answer could.
    ForeignQueueUrls,
}

impl FaultMode {
    /// Faults that cut a connection. On the queue they apply to each fetch of
    /// the result, not to the submission, so `times` counts result fetches.
    pub fn cuts_connection(self) -> bool {
        matches!(self, FaultMode::ResetMidBody | FaultMode::CloseWithoutAnswer)
    }

    /// Faults that leave the answer intact but spoil the file it points at.
    pub fn spoils_result_file(self) -> bool {
        matches!(self, FaultMode::NonImageResult | FaultMode::HugeResult | FaultMode::ChunkedResult | FaultMode::ResultGone)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    #[serde(rename = "match")]
    pub pattern: String,
    pub mode: FaultMode,
    #[serde(default)]
    pub delay_ms: u64,
    /// How many requests it applies to; unlimited when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// How long to wait before answering. `HugeResult` and `ChunkedResult`
    /// reuse `delay_ms` as the file's size, so they must not also sleep that
    /// many milliseconds.
    pub fn wait_ms(&self) -> u64 {
        match self.mode {
            // Its number is a size, or a time spent queued (queue only).
            FaultMode::HugeResult | FaultMode::ChunkedResult | FaultMode::HugeAnswer | FaultMode::SlowQueue => 0,
            _ => self.delay_ms,
        }
    }
}

#[derive(Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    pub fn add(&self, fault: Fault) {
        self.0.lock().unwrap().push(fault);
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// The first fault matching `body`, consuming one of its uses.
    pub fn take(&self, body: &str) -> Option<Fault> {
        self.take_all(body).into_iter().next()
    }

    /// Every fault matching `body` (a queued request can combine, say, a
    /// failed result with a lost webhook), consuming one use of each.
    pub fn take_all(&self, body: &str) -> Vec<Fault> {
        self.take_where(body, |_| true)
    }

    /// Like `take_all`, but only the faults whose mode passes `wanted`.
    pub fn take_where(&self, body: &str, wanted: impl Fn(FaultMode) -> bool) -> Vec<Fault> {
        let mut faults = self.0.lock().unwrap();
        let applies = |f: &Fault| body.contains(&f.pattern) && wanted(f.mode);
        let taken: Vec<Fault> = faults.iter().filter(|f| applies(f)).cloned().collect();
        for f in faults.iter_mut().filter(|f| applies(f)) {
            if let Some(n) = &mut f.times {
                *n -= 1;
            }
        }
        faults.retain(|f| f.times != Some(0));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_by_substring_and_run_out() {
        let faults = Faults::default();
        faults.add(Fault { pattern: "t1".into(), mode: FaultMode::Error500, delay_ms: 0, times: Some(1) });
        assert!(faults.take("nothing here").is_none());
        assert_eq!(faults.take("url?t1").unwrap().mode, FaultMode::Error500);
        assert!(faults.take("url?t1").is_none());
    }

    #[test]
    fn taking_some_modes_leaves_the_others_in_place() {
        let faults = Faults::default();
        faults.add(Fault { pattern: "t2".into(), mode: FaultMode::ResetMidBody, delay_ms: 0, times: Some(1) });
        faults.add(Fault { pattern: "t2".into(), mode: FaultMode::WebhookNever, delay_ms: 0, times: Some(1) });
        let first = faults.take_where("t2", |m| !m.cuts_connection());
        assert_eq!(first.iter().map(|f| f.mode).collect::<Vec<_>>(), vec![FaultMode::WebhookNever]);
        assert_eq!(faults.take_where("t2", FaultMode::cuts_connection)[0].mode, FaultMode::ResetMidBody);
        assert!(faults.take_all("t2").is_empty());
    }

    #[test]
    fn modes_have_snake_case_names_on_the_wire() {
        let fault: Fault = serde_json::from_str(r#"{"match":"m","mode":"close_without_answer"}"#).unwrap();
        assert_eq!(fault.mode, FaultMode::CloseWithoutAnswer);
        assert_eq!(serde_json::to_value(FaultMode::StreamDrop).unwrap(), "stream_drop");
    }

    #[test]
    fn a_huge_result_does_not_wait_its_size_in_milliseconds() {
        let huge = Fault { pattern: "m".into(), mode: FaultMode::HugeResult, delay_ms: 5_000_000, times: None };
        assert_eq!(huge.wait_ms(), 0);
        assert_eq!(Fault { mode: FaultMode::Slow, ..huge }.wait_ms(), 5_000_000);
    }
}
