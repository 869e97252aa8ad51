//! Admin logins are throttled by limiter objects. This test runs on its own
//! stack, so it can lock out its admin. (What survives a restart of the
//! runtime is in `restart`.)

use crate::support::clock::now_ms;
use crate::support::stack::{self, ADMIN_PASSWORD};
use crate::support::Api;
use serde_json::json;

#[tokio::test]
async fn admin_login_brute_force_is_stopped() {
    let api = Api::new(stack::login_throttle());
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
