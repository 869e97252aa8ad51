//! Asynchronous jobs: FAL's queue, signed webhooks, polling fallback, cancel.

use crate::support::stack::{self, JOB_POLL_AFTER_MS};
use crate::support::{marker, try_on, Api, Fault, FaultMode, TestClient};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn new_client() -> TestClient {
    Api::shared().login().await.new_client().await
}

fn fault(m: &str, mode: FaultMode, delay_ms: u64) {
    stack::emulator().add_fault(Fault { pattern: m.to_string(), mode, delay_ms, times: None });
}

async fn create_job(client: &TestClient, m: &str) -> Value {
    let reply = client.post("/api/jobs").json(&try_on(m)).send().await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert_eq!(reply.header("location"), Some(format!("/api/jobs/{id}").as_str()));
    assert_eq!(reply.body["status"], "queued");
    reply.body
}

/// Reads the job until it has finished (reads may poll FAL past the threshold).
async fn wait_finished(client: &TestClient, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
        if ["done", "error", "canceled"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn request_id(m: &str) -> String {
    let ids = stack::emulator().queued_request_ids(m);
    assert_eq!(ids.len(), 1, "one FAL request per job");
    ids[0].clone()
}

async fn wait_for_deliveries(request: &str, n: usize) -> Vec<Option<u16>> {
    for _ in 0..100 {
        let d: Vec<Option<u16>> = stack::emulator().deliveries(request).iter().map(|d| d.status).collect();
        if d.len() >= n {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} webhook deliveries for {request}");
}

#[tokio::test]
async fn a_job_is_finished_by_fals_signed_webhook() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let m = marker();
    let created = create_job(&client, &m).await;
    let id = created["id"].as_str().unwrap();
    let request = request_id(&m);
    assert_eq!(wait_for_deliveries(&request, 1).await, vec![Some(200)]);

    let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
    assert_eq!(job["status"], "done");
    let generation_id = job["generation_id"].as_str().unwrap();
    crate::results::assert_serves_fals_bytes(&admin, &client, generation_id, job["image_url"].as_str().unwrap()).await;
    for field in ["created_at", "fal_start", "fal_end", "completed_at"] {
        assert!(job[field].as_u64().is_some(), "{field} in {job}");
    }
    assert!(stack::emulator().calls_to(&format!("{request}/status")).is_empty(), "the webhook made polling unnecessary");
    // The submission went to the queue with our webhook URL, and the model's sub-path.
    let submitted = stack::emulator().requests_matching(&m);
    assert_eq!(submitted[0].path, "/queue/fal-ai/image-apps-v2/virtual-try-on");

    let history = client.history().await;
    assert_eq!(history.len(), 1);
    assert_eq!((history[0]["job_id"].as_str(), history[0]["status"].as_str()), (Some(id), Some("success")));
    assert_eq!(job["generation_id"], history[0]["id"]);
    assert_eq!(client.wait_until_settled().await["used"], 1);
}

#[tokio::test]
async fn a_lost_webhook_is_covered_by_polling_fal() {
    let client = new_client().await;
    let m = marker();
    fault(&m, FaultMode::WebhookNever, 0);
    let id = create_job(&client, &m).await["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let job = wait_finished(&client, &id, 15).await;
    assert_eq!(job["status"], "done");
    assert!(started.elapsed().as_millis() as u64 >= JOB_POLL_AFTER_MS - 200);
    let request = request_id(&m);
    assert!(!stack::emulator().calls_to(&format!("{request}/status")).is_empty(), "the read asked FAL's status URL");
    assert!(stack::emulator().deliveries(&request).is_empty());
    assert_eq!(client.history().await.len(), 1);
}

#[tokio::test]
async fn duplicate_late_and_reordered_webhooks_change_nothing() {
    let client = new_client().await;
    let twice = marker();
    fault(&twice, FaultMode::WebhookTwice, 0);
    let late = marker();
    fault(&late, FaultMode::WebhookLate, JOB_POLL_AFTER_MS + 1500);
    let twice_id = create_job(&client, &twice).await["id"].as_str().unwrap().to_string();
    let late_id = create_job(&client, &late).await["id"].as_str().unwrap().to_string();

    assert_eq!(wait_for_deliveries(&request_id(&twice), 2).await, vec![Some(200), Some(200)]);
    let done = wait_finished(&client, &late_id, 15).await; // finished by polling, before its webhook
    assert_eq!(done["status"], "done");
    assert_eq!(wait_for_deliveries(&request_id(&late), 1).await, vec![Some(200)]);

    // A signed ERROR for the finished job, arriving last, is acknowledged and ignored.
    let request = request_id(&twice);
    let body = json!({ "request_id": request, "gateway_request_id": request, "status": "ERROR", "payload": { "detail": "late failure" }, "error": "Invalid status code: 500" }).to_string();
    let reply = signed_webhook(&twice_id, &request, body, now_s()).await;
    assert_eq!((reply.status, &reply.body["changed"]), (200, &json!(false)));

    let twice_job = client.get(&format!("/api/jobs/{twice_id}")).expect(200).await;
    assert_eq!(twice_job["status"], "done");
    let history = client.history().await;
    assert_eq!(history.len(), 2, "one generation per job: {history:?}");
    assert!(history.iter().all(|g| g["status"] == "success"));
    assert_eq!(client.wait_until_settled().await["used"], 2, "each job charged once");
}

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn signed_webhook(job_id: &str, request: &str, body: String, timestamp: u64) -> crate::support::Reply {
    let api = Api::shared();
    let mut call = api.post(&format!("/api/webhooks/fal?job={job_id}")).raw("application/json", body.clone());
    for (name, value) in stack::emulator().sign_webhook(request, timestamp, body.as_bytes()) {
        call = call.header(&name, &value);
    }
    call.send().await
}

#[tokio::test]
async fn forged_unsigned_and_stale_webhooks_are_refused_and_change_nothing() {
    let client = new_client().await;
    let m = marker();
    fault(&m, FaultMode::WebhookBadSignature, 0);
    let id = create_job(&client, &m).await["id"].as_str().unwrap().to_string();
    let request = request_id(&m);
    // The emulator's delivery, signed with a key FAL never published, is refused.
    assert_eq!(wait_for_deliveries(&request, 1).await, vec![Some(401)]);

    let ok = json!({ "request_id": request, "gateway_request_id": request, "status": "OK",
        "payload": { "images": [{ "url": "https://attacker.example/x.png" }] } })
    .to_string();
    let api = Api::shared();
    let path = format!("/api/webhooks/fal?job={id}");
    api.post(&path).raw("application/json", ok.clone()).send().await.assert_error(401, "invalid_signature");
    signed_webhook(&id, &request, ok.clone(), now_s() - 400).await.assert_error(401, "invalid_signature");
    // A valid signature over another body does not carry over to this one.
    let mut tampered = api.post(&path).raw("application/json", ok.clone());
    for (name, value) in stack::emulator().sign_webhook(&request, now_s(), b"{\"status\":\"ERROR\"}") {
        tampered = tampered.header(&name, &value);
    }
    tampered.send().await.assert_error(401, "invalid_signature");

    assert!(client.history().await.is_empty(), "no generation recorded");
    assert_eq!(client.get("/api/usage").expect(200).await["in_progress"], 1);

    // The real result still arrives (by polling), untouched by the forgeries.
    let job = wait_finished(&client, &id, 15).await;
    assert_eq!(job["status"], "done");
    assert!(!job["image_url"].as_str().unwrap().contains("attacker"));
}

#[tokio::test]
async fn a_completed_request_whose_result_is_an_error_fails_the_job() {
    let client = new_client().await;
    let via_webhook = marker();
    fault(&via_webhook, FaultMode::ErrorAfterCompleted, 0);
    let via_polling = marker();
    fault(&via_polling, FaultMode::ErrorAfterCompleted, 0);
    fault(&via_polling, FaultMode::WebhookNever, 0);
    let a = create_job(&client, &via_webhook).await["id"].as_str().unwrap().to_string();
    let b = create_job(&client, &via_polling).await["id"].as_str().unwrap().to_string();
    for id in [&a, &b] {
        let job = wait_finished(&client, id, 15).await;
        assert_eq!(job["status"], "error", "{job}");
        assert!(job["error"].as_str().unwrap().contains("No person detected"), "{job}");
        assert_eq!(job["image_url"], Value::Null);
    }
    let history = client.history().await;
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|g| g["status"] == "error"));
    assert_eq!(client.wait_until_settled().await["used"], 0, "failed jobs cost nothing");
}

#[tokio::test]
async fn canceling_a_job_stops_it_at_fal_and_costs_nothing() {
    let client = new_client().await;
    let m = marker();
    fault(&m, FaultMode::Slow, 4000);
    let id = create_job(&client, &m).await["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let canceled = client.call(reqwest::Method::DELETE, &format!("/api/jobs/{id}")).expect(200).await;
    assert_eq!(canceled["status"], "canceled");
    let request = request_id(&m);
    assert_eq!(stack::emulator().calls_to(&format!("{request}/cancel")).len(), 1);

    client.call(reqwest::Method::DELETE, &format!("/api/jobs/{id}")).send().await.assert_error(409, "job_finished");
    let usage = client.wait_until_settled().await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64()), (Some(0), Some(0)));
    let history = client.history().await;
    assert_eq!(history[0]["status"], "canceled");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(stack::emulator().deliveries(&request).is_empty(), "a canceled request sends no webhook");
    assert_eq!(client.get(&format!("/api/jobs/{id}")).expect(200).await["status"], "canceled");
}

#[tokio::test]
async fn a_finished_job_cannot_be_canceled() {
    let client = new_client().await;
    let m = marker();
    let id = create_job(&client, &m).await["id"].as_str().unwrap().to_string();
    wait_finished(&client, &id, 10).await;
    client.call(reqwest::Method::DELETE, &format!("/api/jobs/{id}")).send().await.assert_error(409, "job_finished");
    assert_eq!(client.wait_until_settled().await["used"], 1);
}

#[tokio::test]
async fn another_clients_job_is_not_found() {
    let admin = Api::shared().login().await;
    let a = admin.new_client().await;
    let b = admin.new_client().await;
    let id = create_job(&a, &marker()).await["id"].as_str().unwrap().to_string();
    b.get(&format!("/api/jobs/{id}")).send().await.assert_error(404, "not_found");
    b.call(reqwest::Method::DELETE, &format!("/api/jobs/{id}")).send().await.assert_error(404, "not_found");
    a.get("/api/jobs/job_doesnotexist00000000").send().await.assert_error(404, "not_found");
    a.get("/api/jobs/../admin").send().await;
    Api::shared().get(&format!("/api/jobs/{id}")).send().await.assert_error(401, "missing_api_key");
}

#[tokio::test]
async fn bad_job_requests_are_refused_and_create_nothing() {
    let client = new_client().await;
    let m = marker();
    let mut body = try_on(&m);
    body["model"] = json!("dall-e");
    client.post("/api/jobs").json(&body).send().await.assert_error(422, "unknown_model");
    assert!(stack::emulator().queued_request_ids(&m).is_empty());
    assert_eq!(client.get("/api/usage").expect(200).await["in_progress"], 0);
}

#[tokio::test]
async fn a_job_disappears_after_its_ttl() {
    let client = new_client().await;
    let id = create_job(&client, &marker()).await["id"].as_str().unwrap().to_string();
    wait_finished(&client, &id, 10).await;
    tokio::time::sleep(Duration::from_secs(stack::JOB_TTL_SECONDS + 3)).await;
    client.get(&format!("/api/jobs/{id}")).send().await.assert_error(404, "not_found");
    // The generation it recorded stays.
    assert_eq!(client.history().await.len(), 1);
}
