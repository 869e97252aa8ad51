//! How the API behaves when FAL misbehaves at the transport level, and when
//! the runtime itself restarts with jobs in flight: the shopper gets a clear
//! error, the attempt is recorded, nothing is charged for a failure and
//! nothing is charged twice. (FAL errors by status, hangs, malformed JSON
//! and lost or late webhooks are in generate.rs and jobs.rs.)

use crate::support::raw_http::EndlessServer;
use crate::support::stack::{self, free_port, StackOptions, FAL_TIMEOUT_MS, JOB_POLL_AFTER_MS};
use crate::support::{inject, marker, try_on, Api, Fault, FaultMode, TestClient};
use serde_json::Value;
use std::time::Duration;

async fn recorded(client: &TestClient) -> Vec<Value> {
    client.wait_until_settled().await;
    client.history().await
}

#[tokio::test]
async fn fal_refusing_connections_is_a_502_recorded_and_free() {
    // Nothing listens on FAL's port; FAL's JWKS answers with a body that never ends.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let jwks = EndlessServer::start().await;
    let own = stack::start(StackOptions {
        vars: vec![
            ("FAL_BASE_URL".into(), closed.clone()),
            ("FAL_QUEUE_URL".into(), format!("{closed}/queue")),
            ("FAL_JWKS_URL".into(), format!("{}/jwks.json", jwks.url)),
        ],
        ..Default::default()
    });
    let client = Api::new(&own).login().await.new_client().await;
    client.generate(&try_on(&marker())).send().await.assert_error(502, "upstream_error");
    client.post("/api/jobs").json(&try_on(&marker())).send().await.assert_error(502, "upstream_error");
    let history = recorded(&client).await;
    assert!(history.iter().any(|g| g["status"] == "error" && g["endpoint"] == "/api/images/generate"), "{history:?}");
    assert_eq!(client.get("/api/usage").expect(200).await["used"], 0);

    // A JWKS that never ends is cut off at its cap: the webhook is refused
    // as unverifiable (FAL retries), and the worker did not read it all.
    let signed = stack::emulator().sign_webhook("r1", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), b"{}");
    let api = Api::new(&own);
    let mut call = api.post("/api/webhooks/fal?job=job_aaaaaaaaaaaaaaaaaaaa").raw("application/json", "{}");
    for (name, value) in &signed {
        call = call.header(name, value);
    }
    call.send().await.assert_error(503, "service_unavailable");
    assert!(jwks.taken() < 32 * 1024 * 1024, "the JWKS was read far past its cap: {} bytes", jwks.taken());
}

#[tokio::test]
async fn fal_resetting_mid_body_is_a_502_recorded_and_free() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::ResetMidBody);
    let reply = client.generate(&try_on(&m)).send().await;
    assert_eq!(reply.status, 502, "{}", reply.text);
    let history = recorded(&client).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "error");
    assert_eq!(client.get("/api/usage").expect(200).await["used"], 0);
}

#[tokio::test]
async fn fal_answering_slowly_past_the_timeout_is_a_504_recorded_and_free() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::Slow, delay_ms: FAL_TIMEOUT_MS + 2000, times: None });
    let started = std::time::Instant::now();
    client.generate(&try_on(&m)).send().await.assert_error(504, "upstream_timeout");
    assert!(started.elapsed() < Duration::from_millis(FAL_TIMEOUT_MS + 1500));
    let history = recorded(&client).await;
    assert_eq!(history[0]["status"], "error");
    assert_eq!(client.get("/api/usage").expect(200).await["used"], 0);
}

/// FAL's 200 is not the end: the worker reads the file's first bytes as it
/// copies the result, and a file that is no image fails the generation.
#[tokio::test]
async fn fal_answering_200_with_a_non_image_is_a_502_recorded_and_free() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::NonImageResult);
    client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_malformed_response");
    let history = recorded(&client).await;
    assert_eq!((history.len(), history[0]["status"].as_str()), (1, Some("error")));
    assert_eq!(client.get("/api/usage").expect(200).await["used"], 0);
}

#[tokio::test]
async fn jobs_in_flight_survive_a_runtime_restart_and_are_charged_once() {
    let first = stack::start(StackOptions::default());
    let state_dir = first.state_dir.clone();
    let client = Api::new(&first).login().await.new_client().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let m = marker();
        stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::Slow, delay_ms: 3000, times: None });
        let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    drop(first); // FAL's webhooks will find nobody at the old address.

    let second = stack::start(StackOptions { state_dir: Some(state_dir), ..Default::default() });
    let client = TestClient { api: Api::new(&second), ..client };
    tokio::time::sleep(Duration::from_millis(3000 + JOB_POLL_AFTER_MS)).await;
    for id in &ids {
        let mut job = Value::Null;
        for _ in 0..60 {
            job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
            if job["status"] == "done" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(job["status"], "done", "{job}");
    }
    // Reading them again (more polls) charges nothing more.
    for id in &ids {
        client.get(&format!("/api/jobs/{id}")).expect(200).await;
    }
    let usage = client.wait_until_settled().await;
    assert_eq!(usage["used"], 3);
    let history = client.history().await;
    assert_eq!(history.len(), 3, "{history:?}");
}
