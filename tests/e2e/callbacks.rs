//! Client callbacks: a shop's back end is told when its jobs finish, with a
//! Standard Webhooks signature it can verify with the secret shown once.

use crate::support::receiver::Receiver;
use crate::support::{inject, marker, quiet_period, stack, try_on, wait_until, Api, FaultMode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

fn verify(secret: &str, id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn finished_jobs_are_called_back_signed_and_retried() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(1).await; // the first delivery fails
    let updated = admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let secret = updated["webhook_secret"].as_str().expect("the secret is shown when the URL is first set").to_string();
    let again = admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "name": "Renamed" })).expect(200).await;
    assert!(again.get("webhook_secret").is_none(), "and only then");

    let job = client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    let deliveries = receiver.wait_for(2, 15).await;
    let (first, second) = (&deliveries[0], &deliveries[1]);
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"), "a retry keeps its id");
    for d in [first, second] {
        let (id, ts, sig) = (d.header("webhook-id").unwrap(), d.header("webhook-timestamp").unwrap(), d.header("webhook-signature").unwrap());
        assert!(verify(&secret, id, ts, &d.body, sig), "signature must verify: {d:?}");
        assert!(!verify(&secret, id, ts, &d.body.replace("done", "error"), sig));
    }
    let payload: Value = serde_json::from_str(&second.body).unwrap();
    assert_eq!(payload["type"], "job.completed");
    assert_eq!(payload["data"]["id"], job["id"]);
    assert_eq!(payload["data"]["status"], "done");
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
    let (id, ts, sig) = (d.header("webhook-id").unwrap(), d.header("webhook-timestamp").unwrap(), d.header("webhook-signature").unwrap());
    assert!(verify(&new, id, ts, &d.body, sig));
    assert!(!verify(&old, id, ts, &d.body, sig));
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

/// Long enough for a duplicate callback to show: one would be sent at once,
/// in the background of the duplicate webhook or read already answered.
const QUIET: std::time::Duration = std::time::Duration::from_millis(1500);

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
    assert_eq!((body["type"].as_str(), body["data"]["id"].as_str()), (Some("job.completed"), job["id"].as_str()));
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
