//! `POST /api/webhooks/fal`: what a delivery must prove before it is
//! believed, and what a believed one may change. Deliveries are signed here
//! the way FAL documents (see `support::fal_webhooks`); a delivery for a job
//! that does not exist answers 503 only once its signature verified, 401 if
//! it did not, which lets these tests watch verification without a job.

use crate::support::fal_webhooks::{self, deliver, deliver_for_unknown_job_at, emulator_key, now_s};
use crate::support::jwks::JwksServer;
use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, wait_until, Api, TestClient};
use serde_json::Value;
use std::time::Duration;

async fn job_of(client: &TestClient) -> (String, String) {
    let m = marker();
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let ids = stack::emulator().queued_request_ids(&m);
    (job["id"].as_str().unwrap().to_string(), ids[0].clone())
}

#[tokio::test]
async fn a_verified_delivery_for_a_job_not_yet_visible_is_503_so_fal_retries() {
    let base = stack::shared().base.clone();
    let reply = deliver_for_unknown_job_at(&base, &emulator_key(), now_s()).await;
    reply.assert_error(503, "service_unavailable");
}

#[tokio::test]
async fn timestamps_more_than_five_minutes_away_are_refused_either_way() {
    let base = stack::shared().base.clone();
    let key = emulator_key();
    let now = now_s();
    // Ten seconds of margin on each side of the 300 s tolerance (FAL's clock is not ours).
    for inside in [now - 290, now + 290] {
        deliver_for_unknown_job_at(&base, &key, inside).await.assert_error(503, "service_unavailable");
    }
    for outside in [now - 310, now + 310] {
        deliver_for_unknown_job_at(&base, &key, outside).await.assert_error(401, "invalid_signature");
    }
}

#[tokio::test]
async fn a_delivery_naming_another_jobs_request_is_refused_and_changes_nothing() {
    let client = Api::shared().login().await.new_client().await;
    let (first, first_request) = job_of(&client).await;
    let (second, _) = job_of(&client).await;
    let api = Api::shared();
    // Validly signed for the first job's request, but posted to the second job's URL.
    let body = fal_webhooks::ok_body(&first_request, "https://attacker.example/swap.png");
    deliver(&api, &second, &first_request, &body, &emulator_key(), now_s()).await.assert_error(400, "request_id_mismatch");
    // The body must name the request the signature covers.
    let other = fal_webhooks::ok_body("another-request", "https://attacker.example/swap.png");
    deliver(&api, &first, &first_request, &other, &emulator_key(), now_s()).await.assert_error(400, "request_id_mismatch");
    for id in [&first, &second] {
        let job = wait_until("the job to finish", Duration::from_secs(15), || async {
            let job: Value = client.get(&format!("/api/jobs/{id}")).expect(200).await;
            if job["status"] == "done" { Ok(job) } else { Err(job.to_string()) }
        })
        .await;
        assert!(!job["image_url"].as_str().unwrap().contains("attacker"), "{job}");
    }
}

/// FAL's keys are kept an hour, then fetched again (README: "keys from the
/// JWKS, cached an hour"). The hour passes on the test clock: a signed
/// delivery for an unknown job answers 503 once its signature verified.
#[tokio::test]
async fn fals_keys_are_kept_an_hour_then_fetched_again() {
    let jwks = JwksServer::start();
    let own = stack::start(StackOptions::default().var("FAL_JWKS_URL", jwks.url()));
    let api = Api::new(&own);
    let start_ms = now_s() * 1000;
    let deliver_at = |offset_ms: u64| {
        let api = &api;
        async move {
            let request_id = format!("req-{}", marker());
            let body = fal_webhooks::ok_body(&request_id, "https://fal.media/files/x.png");
            let mut call = api
                .post(&format!("/api/webhooks/fal?job={}", fal_webhooks::unknown_job_id()))
                .raw("application/json", body.clone())
                .header("x-test-now", &(start_ms + offset_ms).to_string());
            for (name, value) in fal_webhooks::signed_headers(&emulator_key(), &request_id, now_s(), body.as_bytes()) {
                call = call.header(&name, &value);
            }
            call.send().await.assert_error(503, "service_unavailable");
        }
    };
    deliver_at(0).await;
    let fetched = jwks.fetches().len();
    assert!(fetched >= 1, "the first delivery fetched FAL's keys");
    deliver_at(59 * 60 * 1000).await;
    deliver_at(3600 * 1000 - 1000).await;
    assert_eq!(jwks.fetches().len(), fetched, "kept for the hour");
    deliver_at(3600 * 1000 + 1000).await;
    assert_eq!(jwks.fetches().len(), fetched + 1, "fetched again once the hour is over");
    deliver_at(3600 * 1000 + 2000).await;
    assert_eq!(jwks.fetches().len(), fetched + 1, "and kept again");
}
