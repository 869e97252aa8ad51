//! Client callbacks: a shop's back end is told when its jobs finish
//! (`job.completed`, `job.failed`) and when a synchronous generation
//! succeeds (`generation.completed`), with a Standard Webhooks signature it
//! can verify with the secret shown once.

use crate::support::receiver::{verify, Receiver};
use crate::support::{inject, marker, quiet_period, stack, try_on, wait_until, Api, FaultMode};
use serde_json::{json, Value};
use std::time::Duration;

/// Longer than the next retry would take (1 s delay + the queue's 1 s batch
/// wait), so "nothing more arrived" means nothing more was sent.
pub const QUIET: Duration = Duration::from_secs(4);

#[tokio::test]
async fn finished_jobs_are_called_back_once_signed_with_the_secret_shown_once() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    let updated = admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let secret = updated["webhook_secret"].as_str().expect("the secret is shown when the URL is first set").to_string();
    assert_eq!(updated["webhook_events"], json!(null), "every event type by default");
    let again = admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "name": "Renamed" })).expect(200).await;
    assert!(again.get("webhook_secret").is_none(), "and only then");

    let job = client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    let arrivals = receiver.exactly(1, 15, QUIET).await;
    let delivery = &arrivals[0];
    assert!(delivery.verifies(&secret), "signature must verify: {delivery:?}");
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    assert_eq!(delivery.header("user-agent"), Some("tryon-webhooks/1"));
    let tampered = delivery.body.replace("done", "error");
    let (id, ts, sig) = (delivery.header("webhook-id").unwrap(), delivery.header("webhook-timestamp").unwrap(), delivery.header("webhook-signature").unwrap());
    assert!(!crate::support::receiver::verify(&secret, id, ts, &tampered, sig));
    assert_eq!(id, format!("msg_{}", job["id"].as_str().unwrap()));
    let payload = delivery.json();
    assert_eq!(payload["type"], "job.completed");
    assert_eq!(payload["data"]["id"], job["id"]);
    assert_eq!(payload["data"]["status"], "done");
    // The payload links our durable URL, which serves FAL's image.
    let image_url = payload["data"]["image_url"].as_str().unwrap();
    crate::results::assert_serves_fals_bytes(&admin, &client, payload["data"]["generation_id"].as_str().unwrap(), image_url).await;
}

#[tokio::test]
async fn failed_jobs_are_called_back_as_job_failed() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let m = marker();
    inject(&m, FaultMode::ErrorAfterCompleted);
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let payload = receiver.exactly(1, 15, QUIET).await[0].json();
    assert_eq!(payload["type"], "job.failed");
    assert_eq!(payload["data"]["id"], job["id"]);
    assert_eq!(payload["data"]["status"], "error");
}

#[tokio::test]
async fn synchronous_generations_are_called_back_with_their_public_view() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let arrival = &receiver.exactly(1, 15, QUIET).await[0];
    let payload = arrival.json();
    assert_eq!(payload["type"], "generation.completed");
    assert_eq!(arrival.header("webhook-id").unwrap(), format!("msg_{}", generated["generation_id"].as_str().unwrap()));
    // The same view as GET /api/generations, as of the event: the image's
    // copy may have finished since (`pending` then, `stored` now).
    let mut history = client.history().await[0].clone();
    let mut data = payload["data"].clone();
    for view in [&mut history, &mut data] {
        view.as_object_mut().unwrap().remove("image_status");
    }
    assert_eq!(data, history);
    assert!(["pending", "stored"].contains(&payload["data"]["image_status"].as_str().unwrap()));
}

#[tokio::test]
async fn rotating_the_secret_changes_the_signature() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    let path = format!("/admin/clients/{}", client.id);
    let old = admin.patch(&path).json(&json!({ "webhook_url": receiver.url })).expect(200).await["webhook_secret"].as_str().unwrap().to_string();
    let rotated = admin.post(&format!("{path}/webhook-secret")).expect(201).await;
    let new = rotated["webhook_secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    let d = &receiver.wait_for(1, 15).await[0];
    assert!(d.verifies(&new));
    assert!(!d.verifies(&old));
}

#[tokio::test]
async fn callback_urls_must_be_https_or_loopback_in_development() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    admin
        .patch(&format!("/admin/clients/{}", client.id))
        .json(&json!({ "webhook_url": "http://shop.example/hook" }))
        .send()
        .await
        .assert_error(422, "invalid_webhook_url");
}

/// A client whose callbacks go to a fresh receiver; returns it with the secret.
async fn called_back_client() -> (crate::support::TestClient, Receiver, String) {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    let updated = admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let secret = updated["webhook_secret"].as_str().unwrap().to_string();
    (client, receiver, secret)
}

fn payload(d: &crate::support::receiver::Received) -> Value {
    serde_json::from_str(&d.body).unwrap()
}


#[tokio::test]
async fn a_failed_job_is_called_back_with_its_error() {
    let (client, receiver, secret) = called_back_client().await;
    let m = marker();
    inject(&m, FaultMode::ErrorAfterCompleted);
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let d = receiver.wait_for(1, 15).await[0].clone();
    let (id, ts, sig) = (d.header("webhook-id").unwrap(), d.header("webhook-timestamp").unwrap(), d.header("webhook-signature").unwrap());
    assert!(verify(&secret, id, ts, &d.body, sig));
    let body = payload(&d);
    assert_eq!((body["type"].as_str(), body["data"]["id"].as_str()), (Some("job.failed"), job["id"].as_str()));
    assert_eq!(body["data"]["status"], "error");
    assert!(body["data"]["error"].as_str().unwrap().contains("No person detected"), "{body}");
    quiet_period(QUIET).await;
    assert_eq!(receiver.received().len(), 1, "called back once");
}

#[tokio::test]
async fn a_job_finished_by_polling_is_called_back_once() {
    let (client, receiver, _) = called_back_client().await;
    let m = marker();
    inject(&m, FaultMode::WebhookNever);
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    // Only reads learn of the end (past JOB_POLL_AFTER_MS they ask FAL); several of them.
    wait_until("the job finished by polling", std::time::Duration::from_secs(15), || async {
        let job: Value = client.get(&path).expect(200).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    for _ in 0..3 {
        client.get(&path).expect(200).await;
    }
    let d = receiver.wait_for(1, 15).await[0].clone();
    assert_eq!(payload(&d)["data"]["status"], "done");
    quiet_period(QUIET).await;
    assert_eq!(receiver.received().len(), 1, "called back once");
}

#[tokio::test]
async fn a_duplicated_fal_webhook_calls_the_client_back_once() {
    let (client, receiver, _) = called_back_client().await;
    let m = marker();
    inject(&m, FaultMode::WebhookTwice);
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let request = stack::emulator().queued_request_ids(&m)[0].clone();
    // Both of FAL's deliveries were answered...
    wait_until("both FAL deliveries answered", std::time::Duration::from_secs(15), || async {
        let answered = stack::emulator().deliveries(&request).iter().filter(|d| d.status == Some(200)).count();
        if answered == 2 { Ok(()) } else { Err(format!("{answered} answered")) }
    })
    .await;
    // ...and the client heard of the job once.
    let d = receiver.wait_for(1, 15).await[0].clone();
    assert_eq!(payload(&d)["data"]["id"], job["id"]);
    quiet_period(QUIET).await;
    assert_eq!(receiver.received().len(), 1, "called back once");
}

/// What the client did itself, or was answered at once, is not called back:
/// a job it canceled (even should FAL report it done afterwards), a
/// synchronous generation that failed. A later success is, so the receiver
/// is known to be reachable and the quiet period follows everything sent.
#[tokio::test]
async fn a_canceled_job_and_a_failed_synchronous_generation_are_not_called_back() {
    use crate::support::fal_webhooks;
    let (client, receiver, _) = called_back_client().await;
    let slow = marker();
    crate::support::inject_after(&slow, FaultMode::Slow, 4000);
    let job = client.post("/api/jobs").json(&try_on(&slow)).expect(202).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(client.delete(&format!("/api/jobs/{id}")).expect(200).await["status"], "canceled");
    let request = stack::emulator().queued_request_ids(&slow)[0].clone();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let late = fal_webhooks::ok_body(&request, "https://fal.media/files/late.png");
    let answered = fal_webhooks::deliver(&Api::shared(), id, &request, &late, &fal_webhooks::emulator_key(), now_s).await;
    assert_eq!(answered.body["changed"], json!(false), "{}", answered.text);

    let failing = marker();
    inject(&failing, FaultMode::Error500);
    client.generate(&try_on(&failing)).send().await.assert_error(502, "upstream_error");

    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let only = &receiver.exactly(1, 15, QUIET).await[0];
    assert_eq!(only.header("webhook-id").unwrap(), format!("msg_{}", generated["generation_id"].as_str().unwrap()));
}
