//! Asynchronous jobs: FAL's queue, signed webhooks, polling fallback, cancel.

use crate::support::clock::{at, header, MINUTE, SECOND};
use crate::support::fal_webhooks::{self, emulator_key, now_s};
use crate::support::stack::{self, JOB_POLL_AFTER_MS};
use crate::support::{marker, try_on, wait_until, Api, Fault, FaultMode, TestClient};
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
    wait_until(&format!("job {id} to finish"), Duration::from_secs(secs), || async {
        let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
        if ["done", "error", "canceled"].contains(&job["status"].as_str().unwrap()) { Ok(job) } else { Err(job.to_string()) }
    })
    .await
}

fn request_id(m: &str) -> String {
    let ids = stack::emulator().queued_request_ids(m);
    assert_eq!(ids.len(), 1, "one FAL request per job");
    ids[0].clone()
}

/// Waits until FAL has finished `request` (asking its result URL, which no
/// test counts), so that a read that polls FAL ends the job.
async fn wait_until_fal_finished(request: &str) {
    let result_url = format!("{}/queue/fal-ai/image-apps-v2/requests/{request}", stack::emulator().url());
    wait_until("FAL to finish the request", Duration::from_secs(10), || async {
        let r = reqwest::Client::new().get(&result_url).header("authorization", format!("Key {}", stack::FAL_KEY)).send().await.unwrap();
        if r.status() == 200 { Ok(()) } else { Err(r.status().to_string()) }
    })
    .await;
}

/// The answers our webhook gave FAL's deliveries for `request`, once there are `n`.
async fn wait_for_deliveries(request: &str, n: usize) -> Vec<Option<u16>> {
    wait_until(&format!("{n} webhook deliveries for {request}"), Duration::from_secs(10), || async {
        let d: Vec<Option<u16>> = stack::emulator().deliveries(request).iter().map(|d| d.status).collect();
        if d.len() >= n { Ok(d) } else { Err(format!("{d:?}")) }
    })
    .await
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
    assert_eq!((job["client_id"].as_str(), job["garments_count"].as_u64(), job["model"].as_str()), (Some(client.id.as_str()), Some(1), Some("fal-virtual-try-on")));
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
async fn reads_ask_fal_only_once_job_poll_after_ms_has_passed_without_a_webhook() {
    let client = new_client().await;
    let m = marker();
    fault(&m, FaultMode::WebhookNever, 0);
    let t = at("2031-10-09T12:00:00Z");
    let created = client.post("/api/jobs").header("x-test-now", &header(t)).json(&try_on(&m)).send().await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let request = request_id(&m);
    let status_calls = || stack::emulator().calls_to(&format!("{request}/status")).len();
    let read_at = |ms: u64| client.get(&format!("/api/jobs/{id}")).header("x-test-now", &header(ms)).expect(200);
    wait_until_fal_finished(&request).await;
    let before = read_at(t + JOB_POLL_AFTER_MS - 1).await;
    assert_eq!(before["status"], "queued");
    assert_eq!(status_calls(), 0, "1 ms before the threshold, FAL is not asked");
    let after = read_at(t + JOB_POLL_AFTER_MS).await;
    assert_eq!(status_calls(), 1, "at the threshold, the read asks FAL");
    assert_eq!(after["status"], "done", "{after}");
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
    let reply = signed_webhook(&twice_id, &request, fal_webhooks::error_body(&request), now_s()).await;
    assert_eq!((reply.status, &reply.body["changed"]), (200, &json!(false)));

    let twice_job = client.get(&format!("/api/jobs/{twice_id}")).expect(200).await;
    assert_eq!(twice_job["status"], "done");
    let history = client.history().await;
    assert_eq!(history.len(), 2, "one generation per job: {history:?}");
    assert!(history.iter().all(|g| g["status"] == "success"));
    assert_eq!(client.wait_until_settled().await["used"], 2, "each job charged once");
}

/// A delivery signed with the key FAL (the emulator) publishes.
async fn signed_webhook(job_id: &str, request: &str, body: String, timestamp: u64) -> crate::support::Reply {
    fal_webhooks::deliver(&Api::shared(), job_id, request, &body, &emulator_key(), timestamp).await
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

    let ok = fal_webhooks::ok_body(&request, "https://attacker.example/x.png");
    let api = Api::shared();
    let path = format!("/api/webhooks/fal?job={id}");
    api.post(&path).raw("application/json", ok.clone()).send().await.assert_error(401, "invalid_signature");
    signed_webhook(&id, &request, ok.clone(), now_s() - 400).await.assert_error(401, "invalid_signature");
    fal_webhooks::deliver(&api, &id, &request, &ok, &fal_webhooks::unpublished_key(), now_s()).await.assert_error(401, "invalid_signature");
    // A valid signature over another body does not carry over to this one.
    let mut tampered = api.post(&path).raw("application/json", ok.clone());
    for (name, value) in fal_webhooks::signed_headers(&emulator_key(), &request, now_s(), b"{\"status\":\"ERROR\"}") {
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
    let canceled = client.delete(&format!("/api/jobs/{id}")).expect(200).await;
    assert_eq!(canceled["status"], "canceled");
    let request = request_id(&m);
    assert_eq!(stack::emulator().calls_to(&format!("{request}/cancel")).len(), 1);

    client.delete(&format!("/api/jobs/{id}")).send().await.assert_error(409, "job_finished");
    let usage = client.wait_until_settled().await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64()), (Some(0), Some(0)));
    let history = client.history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "canceled");

    // Should FAL still report the request as done (a race with the cancel),
    // the canceled job stays canceled and costs nothing.
    let late = signed_webhook(&id, &request, fal_webhooks::ok_body(&request, "https://fal.media/files/late.png"), now_s()).await;
    assert_eq!((late.status, &late.body["changed"]), (200, &json!(false)), "{}", late.text);
    let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
    assert_eq!((job["status"].as_str(), job["image_url"].as_str()), (Some("canceled"), None));
    assert_eq!(client.history().await[0]["status"], "canceled");
    assert_eq!(client.get("/api/usage").expect(200).await["used"], 0);
}

#[tokio::test]
async fn a_finished_job_cannot_be_canceled() {
    let client = new_client().await;
    let m = marker();
    let id = create_job(&client, &m).await["id"].as_str().unwrap().to_string();
    wait_finished(&client, &id, 10).await;
    client.delete(&format!("/api/jobs/{id}")).send().await.assert_error(409, "job_finished");
    assert_eq!(client.wait_until_settled().await["used"], 1);
}

#[tokio::test]
async fn another_clients_job_is_not_found() {
    let admin = Api::shared().login().await;
    let a = admin.new_client().await;
    let b = admin.new_client().await;
    let id = create_job(&a, &marker()).await["id"].as_str().unwrap().to_string();
    b.get(&format!("/api/jobs/{id}")).send().await.assert_error(404, "not_found");
    b.delete(&format!("/api/jobs/{id}")).send().await.assert_error(404, "not_found");
    a.get("/api/jobs/job_doesnotexist00000000").send().await.assert_error(404, "not_found");
    // Ids that try to step out of the job namespace name no job.
    for path in ["/api/jobs/..%2Fadmin", "/api/jobs/..%2F..%2Fadmin%2Fclients", "/api/jobs/job_..%2Fjob_x", &format!("/api/jobs/{id}%2F..%2F{id}")] {
        let reply = a.get(path).send().await;
        reply.assert_error(404, "not_found");
        assert!(!reply.text.contains(&id), "{path}: {}", reply.text);
    }
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
async fn a_job_holds_its_slot_for_15_minutes_and_a_late_success_is_charged_once() {
    let client = Api::shared()
        .login()
        .await
        .create_client(json!({ "name": format!("Long job {}", marker()), "max_concurrent": 1, "usage_limit": 5 }))
        .await;
    let m = marker();
    // FAL finishes the request but its webhook never comes: only a read will learn of it.
    fault(&m, FaultMode::WebhookNever, 0);
    let t = at("2031-10-08T12:00:00Z");
    let created = client.post("/api/jobs").header("x-test-now", &header(t)).json(&try_on(&m)).send().await;
    assert_eq!(created.status, 202, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_string();

    // One second before 15 minutes the job still holds the slot and the unit...
    let held = client.usage_at(t + 15 * MINUTE - SECOND).await;
    assert_eq!((held["in_flight"].as_u64(), held["in_progress"].as_u64()), (Some(1), Some(1)), "{held}");
    client.generate(&try_on(&marker())).header("x-test-now", &header(t + 15 * MINUTE - SECOND)).send().await.assert_error(429, "too_many_concurrent");
    // ...one second after, the slot is free, and the limiter's alarm releases the unit
    // (D1 has no generation for the job yet).
    let after = t + 15 * MINUTE + SECOND;
    assert_eq!(client.usage_at(after).await["in_flight"], 0);
    let released = client.wait_for_usage_at(after, "the reservation released", |u| u["in_progress"] == 0).await;
    assert_eq!(released["used"], 0);

    // The success arrives late (a read polls FAL): it is charged, once.
    wait_until_fal_finished(&request_id(&m)).await;
    let read_at = after + SECOND;
    let job = client.get(&format!("/api/jobs/{id}")).header("x-test-now", &header(read_at)).expect(200).await;
    assert_eq!(job["status"], "done", "{job}");
    client.wait_for_usage_at(read_at, "the late success charged", |u| u["used"] == 1).await;
    // Neither another read nor FAL's duplicate report charges it again.
    client.get(&format!("/api/jobs/{id}")).header("x-test-now", &header(read_at)).expect(200).await;
    let request = request_id(&m);
    let again = signed_webhook(&id, &request, fal_webhooks::ok_body(&request, "https://fal.media/files/again.png"), now_s()).await;
    assert_eq!(again.body["changed"], false);
    let usage = client.usage_at(read_at).await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64()), (Some(1), Some(0)));
    assert_eq!(client.history().await.len(), 1);
}
