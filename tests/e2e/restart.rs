//! What survives the runtime going down, and what the next deployment finds.
//! One scenario (`support::restart_scenario`) is set up once for every test
//! here; each test checks one consequence on its own client.

use crate::support::clock::{at, header, SECOND};
use crate::support::restart_scenario::{scenario, HANG_AT, JOB_AT, JOB_RESERVATION_MS, LOST_AT, RATE_AT, RESERVATION_MS};
use crate::support::stack::ADMIN_PASSWORD;
use crate::support::{marker, quiet_period, try_on, wait_until, Api};
use crate::support::clock::MINUTE;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn the_rate_bucket_survives_a_restart() {
    let s = scenario();
    let rate = s.client(&s.rate);
    let refused = rate.generate(&try_on(&marker())).header("x-test-now", &header(at(RATE_AT) + SECOND)).send().await;
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("59"));
}

#[tokio::test]
async fn an_in_flight_reservation_survives_a_restart_until_the_fal_timeout_plus_a_minute() {
    let s = scenario();
    let capped = s.client(&s.capped);
    let hung_at = at(HANG_AT);
    let generate_at = |ms: u64| capped.generate(&try_on(&marker())).header("x-test-now", &header(ms)).send();
    generate_at(hung_at + SECOND).await.assert_error(429, "too_many_concurrent");
    assert_eq!(capped.usage_at(hung_at + SECOND).await["in_flight"], 1);
    generate_at(hung_at + RESERVATION_MS - SECOND).await.assert_error(429, "too_many_concurrent");
    // Once it has outlived any request it no longer holds the slot.
    let admitted = generate_at(hung_at + RESERVATION_MS + SECOND).await;
    assert_eq!(admitted.status, 200, "{}", admitted.text);
}

#[tokio::test]
async fn the_alarm_releases_a_reservation_whose_generation_was_never_recorded() {
    let s = scenario();
    let crashed = s.client(&s.crashed);
    let hung_at = at(HANG_AT);
    let held = crashed.usage_at(hung_at + SECOND).await;
    assert_eq!((held["in_progress"].as_u64(), held["used"].as_u64()), (Some(1), Some(0)), "{held}");
    // A request past the expiry marks it stale; the alarm then asks D1, finds
    // nothing, and gives the unit back.
    let expired = hung_at + RESERVATION_MS + SECOND;
    let settled = crashed.wait_for_usage_at(expired, "the alarm to release the reservation", |u| u["in_progress"] == 0).await;
    assert_eq!((settled["used"].as_u64(), settled["remaining"].as_u64()), (Some(0), Some(5000)));
}

#[tokio::test]
async fn the_alarm_charges_a_reservation_whose_success_reached_d1() {
    let s = scenario();
    let shop = s.client(&s.job_shop);
    let created = at(JOB_AT);
    let held = shop.usage_at(created + MINUTE).await;
    assert_eq!((held["in_progress"].as_u64(), held["used"].as_u64()), (Some(1), Some(0)), "{held}");
    let expired = created + JOB_RESERVATION_MS + SECOND;
    let settled = shop.wait_for_usage_at(expired, "the alarm to settle the job's reservation", |u| u["in_progress"] == 0).await;
    assert_eq!(settled["used"], 1, "D1 says the job succeeded: charged ({} was never settled by a worker)", s.job_id);
}

#[tokio::test]
async fn a_limiter_that_lost_its_storage_reloads_its_client_and_this_months_count_from_d1() {
    let s = scenario();
    let lost = s.client(&s.lost);
    let now = at(LOST_AT) + MINUTE;
    let usage = lost.usage_at(now).await;
    assert_eq!((usage["used"].as_u64(), usage["limit"].as_u64(), usage["remaining"].as_u64()), (Some(2), Some(3), Some(1)), "{usage}");
    lost.generate(&try_on(&marker())).header("x-test-now", &header(now)).expect(200).await;
    lost.generate(&try_on(&marker())).header("x-test-now", &header(now)).send().await.assert_error(429, "quota_exceeded");
}

#[tokio::test]
async fn without_admin_password_admin_login_is_disabled() {
    let s = scenario();
    let api = Api::new(&s.after);
    for password in [ADMIN_PASSWORD, "", "guess"] {
        api.post("/admin/login").json(&json!({ "password": password })).send().await.assert_error(503, "service_unavailable");
    }
}

#[tokio::test]
async fn without_webhook_signing_key_no_callbacks_are_sent() {
    let s = scenario();
    let shop = s.client(&s.called_back);
    let job = shop.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    wait_until("the job to finish", Duration::from_secs(15), || async {
        let job: Value = shop.get(&path).expect(200).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    quiet_period(Duration::from_millis(2500)).await;
    assert!(s.receiver.received().is_empty(), "no callback without a signing key: {:?}", s.receiver.received());
}
