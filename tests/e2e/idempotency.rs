//! `Idempotency-Key` on the generation endpoints.

use crate::support::clock::{at, header, HOUR, MINUTE};
use crate::support::{inject_after, marker, stack, try_on, wait_until, Api, Fault, FaultMode, TestClient};
use serde_json::json;
use std::time::Duration;

async fn new_client() -> TestClient {
    Api::shared().login().await.new_client().await
}

#[tokio::test]
async fn a_repeated_job_request_returns_the_original_job_and_creates_nothing() {
    let client = new_client().await;
    let m = marker();
    let key = format!("order-{m}");
    let first = client.post("/api/jobs").header("idempotency-key", &key).json(&try_on(&m)).send().await;
    assert_eq!(first.status, 202);
    let again = client.post("/api/jobs").header("idempotency-key", &key).json(&try_on(&m)).send().await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(stack::emulator().queued_request_ids(&m).len(), 1, "FAL saw one request");

    let mut other = try_on(&m);
    other["preserve_pose"] = json!(false);
    client.post("/api/jobs").header("idempotency-key", &key).json(&other).send().await.assert_error(422, "idempotency_key_reused");
}

#[tokio::test]
async fn a_repeated_generation_returns_the_original_image_marked_as_replayed() {
    let client = new_client().await;
    let m = marker();
    let key = format!("gen-{m}");
    let first = client.generate(&try_on(&m)).header("idempotency-key", &key).send().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = client.generate(&try_on(&m)).header("idempotency-key", &key).send().await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(stack::emulator().requests_matching(&m).len(), 1);
    assert_eq!(client.history().await.len(), 1);
    assert_eq!(client.wait_until_settled().await["used"], 1);
}

#[tokio::test]
async fn a_key_is_remembered_for_24_hours_and_then_runs_again() {
    let client = new_client().await;
    let m = marker();
    let key = format!("day-{m}");
    let t = at("2031-08-12T09:00:00Z");
    let send = |at_ms: u64| client.generate(&try_on(&m)).header("idempotency-key", &key).header("x-test-now", &header(at_ms)).send();
    let first = send(t).await;
    assert_eq!(first.status, 200, "{}", first.text);

    let within = send(t + 24 * HOUR - MINUTE).await;
    assert_eq!(within.header("idempotent-replayed"), Some("true"), "23 h 59 min later: {}", within.text);
    assert_eq!(within.body, first.body);
    assert_eq!(stack::emulator().requests_matching(&m).len(), 1);

    let after = send(t + 24 * HOUR + MINUTE).await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(after.header("idempotent-replayed"), None, "24 h 01 min later the key is forgotten");
    assert_ne!(after.body["generation_id"], first.body["generation_id"]);
    assert_eq!(stack::emulator().requests_matching(&m).len(), 2);
    // A day later still, the key replays the second run, not the first.
    let replay = send(t + 24 * HOUR + 2 * MINUTE).await;
    assert_eq!(replay.body["generation_id"], after.body["generation_id"]);
}

#[tokio::test]
async fn a_concurrent_duplicate_is_told_to_wait() {
    let client = new_client().await;
    let m = marker();
    inject_after(&m, FaultMode::Slow, 1500);
    let key = format!("slow-{m}");
    let (a, b) = (client.clone(), client.clone());
    let (k1, k2, m1, m2) = (key.clone(), key.clone(), m.clone(), m.clone());
    let first = tokio::spawn(async move { a.generate(&try_on(&m1)).header("idempotency-key", &k1).send().await });
    // The first request claimed the key before it called FAL.
    wait_until("the first request at FAL", Duration::from_secs(10), || async {
        if stack::emulator().requests_matching(&m).len() == 1 { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
    let second = b.generate(&try_on(&m2)).header("idempotency-key", &k2).send().await;
    second.assert_error(409, "idempotency_in_progress");
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(stack::emulator().requests_matching(&m).len(), 1, "the duplicate never reached FAL");
}

#[tokio::test]
async fn keys_are_scoped_per_client() {
    let admin = Api::shared().login().await;
    let (a, b) = (admin.new_client().await, admin.new_client().await);
    let m = marker();
    let key = format!("shared-{m}");
    let from_a = a.generate(&try_on(&m)).header("idempotency-key", &key).expect(200).await;
    let from_b = b.generate(&try_on(&m)).header("idempotency-key", &key).expect(200).await;
    assert_ne!(from_a["generation_id"], from_b["generation_id"]);
}

#[tokio::test]
async fn an_upstream_failure_is_not_kept_so_a_retry_runs_again() {
    let client = new_client().await;
    let m = marker();
    stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::Error500, delay_ms: 0, times: Some(1) });
    let key = format!("retry-{m}");
    client.generate(&try_on(&m)).header("idempotency-key", &key).send().await.assert_error(502, "upstream_error");
    let retried = client.generate(&try_on(&m)).header("idempotency-key", &key).send().await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let client = new_client().await;
    client.generate(&try_on(&marker())).header("idempotency-key", &"k".repeat(300)).send().await.assert_error(400, "invalid_idempotency_key");
}
