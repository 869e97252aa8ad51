//! `POST /api/webhooks/fal`: what a delivery must prove before it is
//! believed, and what a believed one may change. Deliveries are signed here
//! the way FAL documents (see `support::fal_webhooks`); a delivery for a job
//! that does not exist answers 503 only once its signature verified, 401 if
//! it did not, which lets these tests watch verification without a job.

use crate::support::fal_webhooks::{self, deliver, deliver_for_unknown_job_at, emulator_key, now_s, unpublished_key};
use crate::support::stack;
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

#[tokio::test]
async fn fals_keys_are_cached_and_an_unknown_key_triggers_at_most_one_refetch_a_minute() {
    let production = stack::production_like();
    let (base, jwks) = (production.stack.base.clone(), &production.jwks);
    // The stack verified one delivery when it started, so the keys are cached.
    let last_fetch = *jwks.fetches().last().expect("the JWKS was fetched at start");

    // Known keys verify from the cache: no fetch.
    let before = jwks.fetches().len();
    deliver_for_unknown_job_at(&base, &emulator_key(), now_s()).await.assert_error(503, "service_unavailable");
    assert_eq!(jwks.fetches().len(), before, "a cached key needs no fetch");

    // FAL rotates: a delivery signed with a newly published key makes the worker
    // refetch, once the cached copy is over a minute old.
    let rotated = unpublished_key();
    jwks.publish(&rotated, "rotated");
    let minute_after = last_fetch + Duration::from_secs(61);
    wait_until("the cached keys to be a minute old", Duration::from_secs(70), || async {
        if std::time::Instant::now() >= minute_after { Ok(()) } else { Err("younger than a minute".into()) }
    })
    .await;
    deliver_for_unknown_job_at(&base, &rotated, now_s()).await.assert_error(503, "service_unavailable");
    assert_eq!(jwks.fetches().len(), before + 1, "one refetch found the new key");

    // Another unknown key right after: no second refetch within the minute, refused.
    let unknown = unpublished_key();
    jwks.publish(&unknown, "too-soon");
    deliver_for_unknown_job_at(&base, &unknown, now_s()).await.assert_error(401, "invalid_signature");
    assert_eq!(jwks.fetches().len(), before + 1, "at most one refetch a minute");
    // Both keys known by now still verify from the cache.
    deliver_for_unknown_job_at(&base, &rotated, now_s()).await.assert_error(503, "service_unavailable");
    deliver_for_unknown_job_at(&base, &emulator_key(), now_s()).await.assert_error(503, "service_unavailable");
    assert_eq!(jwks.fetches().len(), before + 1);
}
