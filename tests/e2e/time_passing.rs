//! Tests that need real minutes to pass: a job record's expiry in KV, and
//! the minute between two fetches of FAL's JWKS. Both run on the
//! production-like stack, whose minutes start when it does (it primes its JWKS
//! cache and creates its aging job at start); and this module sorts last, so
//! in a full run the rest of the suite fills those minutes.

use crate::support::fal_webhooks::{deliver_for_unknown_job_at, emulator_key, now_s, unpublished_key};
use crate::support::{stack, wait_until, Api, TestClient};
use std::time::Duration;

#[tokio::test]
async fn a_job_disappears_after_its_ttl() {
    // The production-like stack sets JOB_TTL_SECONDS=10; KV keeps nothing for
    // less than 60 s, so the worker asks for 60. Its aging job was created and
    // finished when the stack started.
    let aging = &stack::production_like().aging_job;
    let client = TestClient { api: Api::new(&stack::production_like().stack), ..aging.client.clone() };
    let path = format!("/api/jobs/{}", aging.id);
    let gone = wait_until("the job record to expire", Duration::from_secs(stack::KV_MIN_TTL_SECONDS + 30), || async {
        let reply = client.get(&path).send().await;
        if reply.status == 404 { Ok(aging.created.elapsed()) } else { Err(reply.text) }
    })
    .await;
    assert!(gone >= Duration::from_secs(stack::KV_MIN_TTL_SECONDS - 1), "gone {gone:?} after its creation");
    // The generation it recorded stays.
    assert_eq!(client.history().await.len(), 1);
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

/// README: "A job that never ends is recorded as failed when its TTL passes"
/// — so that every attempt is a row — and it is not charged. The stalled job
/// is never read (a read past JOB_POLL_AFTER_MS would ask FAL and end it):
/// only the history is, until the client's object records it.
#[tokio::test]
async fn a_job_that_never_ends_is_recorded_failed_when_its_ttl_passes() {
    let stalled = &stack::production_like().stalled_job;
    let client = TestClient { api: Api::new(&stack::production_like().stack), ..stalled.client.clone() };
    let row = wait_until("the stalled job's row", Duration::from_secs(stack::KV_MIN_TTL_SECONDS + 60), || async {
        let history = client.history().await;
        match history.iter().find(|g| g["job_id"] == stalled.id.as_str()) {
            Some(row) => Ok(row.clone()),
            None => Err(format!("no row after {:?}", stalled.created.elapsed())),
        }
    })
    .await;
    assert!(stalled.created.elapsed() >= Duration::from_secs(stack::KV_MIN_TTL_SECONDS - 1), "recorded only once its lifetime passed");
    assert_eq!(row["status"], "error", "{row}");
    assert!(row["error"].as_str().is_some_and(|e| e.contains("within the job's lifetime")), "{row}");
    let usage = client.get("/api/usage").expect(200).await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64()), (Some(0), Some(0)), "released, not charged: {usage}");
}
