//! Limiter state lives in the Durable Objects' SQLite storage: it survives a
//! restart of the runtime, and a reservation a crashed worker never settled
//! frees itself once it expires. Admin logins are throttled. These tests run
//! on their own stack, so they can restart it and lock out its admin.

use crate::support::stack::{self, StackOptions, ADMIN_PASSWORD};
use crate::support::{inject, marker, try_on, Api, FaultMode};
use serde_json::json;
use std::time::Duration;

const FAL_TIMEOUT_MS: u64 = 30_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn limits_survive_a_restart_and_unsettled_reservations_expire() {
    let options = StackOptions { vars: vec![("FAL_TIMEOUT_MS".into(), FAL_TIMEOUT_MS.to_string())], state_dir: None };
    let first = stack::start(options.clone());
    let state_dir = first.state_dir.clone();
    let api = Api::new(&first);
    let admin = api.login().await;
    let capped = admin.create_client(json!({ "name": format!("Crash {}", marker()), "max_concurrent": 1, "rate_limit_per_minute": 100 })).await;
    let slow_rate = admin.create_client(json!({ "name": format!("Rate {}", marker()), "rate_limit_per_minute": 1 })).await;
    slow_rate.generate(&try_on(&marker())).expect(200).await;

    // A generation is in flight (FAL hangs) when the runtime dies.
    let hanging = marker();
    inject(&hanging, FaultMode::Hang);
    let url = format!("{}/api/images/generate", api.base);
    let (key, body) = (capped.key.clone(), try_on(&hanging));
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new().post(url).header("x-api-key", key).json(&body).send().await.map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(first);
    assert!(in_flight.await.unwrap().is_err(), "the request died with the runtime");

    let second = stack::start(StackOptions { state_dir: Some(state_dir), ..options });
    let api = Api::new(&second);
    let capped = crate::support::TestClient { api: api.clone(), ..capped };
    let slow_rate = crate::support::TestClient { api: api.clone(), ..slow_rate };

    // The rate bucket and the unsettled reservation were both kept.
    slow_rate.generate(&try_on(&marker())).send().await.assert_error(429, "rate_limited");
    capped.generate(&try_on(&marker())).send().await.assert_error(429, "too_many_concurrent");
    assert_eq!(capped.get("/api/usage").expect(200).await["in_flight"], 1);

    // Once the reservation has outlived any request, it no longer holds the slot.
    let after_expiry = (now_ms() + FAL_TIMEOUT_MS + 60_000 + 5_000).to_string();
    capped.generate(&try_on(&marker())).header("x-test-now", &after_expiry).expect(200).await;
}

#[tokio::test]
async fn admin_login_brute_force_is_stopped() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    for _ in 0..10 {
        api.post("/admin/login").json(&json!({ "password": "guess" })).send().await.assert_error(401, "invalid_credentials");
    }
    // Even the right password is refused from this address until the window passes.
    let locked = api.post("/admin/login").json(&json!({ "password": ADMIN_PASSWORD })).send().await;
    locked.assert_error(429, "too_many_login_attempts");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "about 15 minutes, got {retry}");

    let later = (now_ms() + 16 * 60 * 1000).to_string();
    api.post("/admin/login").header("x-test-now", &later).json(&json!({ "password": ADMIN_PASSWORD })).expect(200).await;
}
