//! Admin sessions: only a live, server-side session opens the admin API.

use crate::support::stack::ADMIN_PASSWORD;
use crate::support::Api;
use serde_json::json;

const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie() {
    let api = Api::shared();
    let reply = api.post("/admin/login").json(&json!({ "password": ADMIN_PASSWORD })).send().await;
    assert_eq!(reply.status, 200);
    let cookie = reply.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("authenticated"));
}

#[tokio::test]
async fn every_login_gets_a_new_token() {
    let api = Api::shared();
    assert_ne!(api.login().await.cookie, api.login().await.cookie);
}

#[tokio::test]
async fn wrong_password_is_refused() {
    let api = Api::shared();
    api.post("/admin/login").json(&json!({ "password": "guess" })).send().await.assert_error(401, "invalid_credentials");
    api.post("/admin/login").json(&json!({ "pass": ADMIN_PASSWORD })).send().await.assert_error(422, "invalid_request");
    api.post("/admin/login").raw("application/json", "{").send().await.assert_error(400, "malformed_json");
}

#[tokio::test]
async fn admin_routes_refuse_a_missing_session() {
    let api = Api::shared();
    api.get("/admin/clients").send().await.assert_error(401, "not_logged_in");
    api.get("/admin/session").send().await.assert_error(401, "not_logged_in");
}

#[tokio::test]
async fn admin_routes_refuse_forged_sessions() {
    let api = Api::shared();
    let forged = [
        "vto_admin_session=authenticated",
        "vto_admin_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "admin_auth=authenticated",
    ];
    for cookie in forged {
        api.get("/admin/clients").header("cookie", cookie).send().await.assert_error(401, "not_logged_in");
    }
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let admin = Api::shared().login().await;
    admin.get("/admin/session").expect(200).await;
    let reply = admin.post("/admin/logout").send().await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("set-cookie").unwrap().contains("Max-Age=0"));
    // The old cookie, replayed, no longer works.
    admin.get("/admin/session").send().await.assert_error(401, "not_logged_in");
    admin.get("/admin/clients").send().await.assert_error(401, "not_logged_in");
}

#[tokio::test]
async fn sessions_expire_after_seven_days() {
    let admin = Api::shared().login().await;
    let later = (now_ms() + WEEK_MS + 1000).to_string();
    admin.get("/admin/clients").header("x-test-now", &later).send().await.assert_error(401, "session_expired");
}

#[tokio::test]
async fn idle_sessions_expire() {
    let admin = Api::shared().login().await;
    let three_hours_later = (now_ms() + 3 * 3600 * 1000).to_string();
    admin.get("/admin/session").header("x-test-now", &three_hours_later).send().await.assert_error(401, "session_expired");
}

#[tokio::test]
async fn activity_keeps_a_session_alive() {
    let admin = Api::shared().login().await;
    let start = now_ms();
    for hour in 1..=4u64 {
        let at = (start + hour * 3600 * 1000 - 60_000).to_string();
        admin.get("/admin/session").header("x-test-now", &at).expect(200).await;
    }
}

#[tokio::test]
async fn cross_site_admin_writes_are_refused() {
    let admin = Api::shared().login().await;
    admin
        .post("/admin/clients")
        .header("origin", "https://evil.example")
        .json(&json!({ "name": "Injected" }))
        .send()
        .await
        .assert_error(403, "foreign_origin");
    admin
        .post("/admin/clients")
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "name": "Injected" }))
        .send()
        .await
        .assert_error(403, "foreign_origin");
    // Our own origin is fine.
    let own = admin.api.base.clone();
    admin.post("/admin/clients").header("origin", &own).json(&json!({ "name": "Same origin" })).expect(201).await;
}
