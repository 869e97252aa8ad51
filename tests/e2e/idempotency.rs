//! `Idempotency-Key` on the generation endpoints.

use crate::support::{marker, stack, try_on, Api, Fault, FaultMode, TestClient};
use serde_json::json;

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
async fn a_repeated_generation_returns_the_original_image() {
    let client = new_client().await;
    let m = marker();
    let key = format!("gen-{m}");
    let first = client.generate(&try_on(&m)).header("idempotency-key", &key).expect(200).await;
    let again = client.generate(&try_on(&m)).header("idempotency-key", &key).send().await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first);
    assert_eq!(stack::emulator().requests_matching(&m).len(), 1);
    assert_eq!(client.history().await.len(), 1);
    assert_eq!(client.wait_until_settled().await["used"], 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_is_told_to_wait() {
    let client = new_client().await;
    let m = marker();
    stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::Slow, delay_ms: 1500, times: None });
    let key = format!("slow-{m}");
    let (a, b) = (client.clone(), client.clone());
    let (k1, k2, m1, m2) = (key.clone(), key.clone(), m.clone(), m.clone());
    let first = tokio::spawn(async move { a.generate(&try_on(&m1)).header("idempotency-key", &k1).send().await });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let second = b.generate(&try_on(&m2)).header("idempotency-key", &k2).send().await;
    second.assert_error(409, "idempotency_in_progress");
    assert_eq!(first.await.unwrap().status, 200);
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
