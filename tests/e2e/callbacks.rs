//! Client callbacks: a shop's back end is told when its jobs finish
//! (`job.completed`, `job.failed`) and when a synchronous generation
//! succeeds (`generation.completed`), with a Standard Webhooks signature it
//! can verify with the secret shown once.

use crate::support::receiver::Receiver;
use crate::support::{inject, marker, try_on, Api, FaultMode};
use serde_json::json;
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
