//! Admin sessions: only a live, server-side session opens the admin API.

use crate::support::clock::{header, now_ms, DAY, HOUR, MINUTE, SECOND};
use crate::support::stack::ADMIN_PASSWORD;
use crate::support::{Admin, Api};
use serde_json::json;

const IDLE_MINUTES: u64 = 120;

async fn session_at(admin: &Admin, ms: u64) -> crate::support::Reply {
    admin.get("/admin/session").header("x-test-now", &header(ms)).send().await
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie() {
    let api = Api::shared();
    let reply = api.post("/admin/login").json(&json!({ "password": ADMIN_PASSWORD })).send().await;
    assert_eq!(reply.status, 200);
    let cookie = reply.header("set-cookie").unwrap();
    // `__Host-`: the browser keeps it only if Secure, Path=/ and no Domain.
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("authenticated"));
    // 256 random bits: 43 characters of base64url.
    let token = cookie.split(';').next().unwrap().strip_prefix("__Host-vto_admin_session=").unwrap();
    assert_eq!(token.len(), 43);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
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
    let genuine = api.login().await.cookie;
    let token = genuine.strip_prefix("__Host-vto_admin_session=").expect("the session cookie's name").to_string();
    let last = if token.ends_with('A') { 'B' } else { 'A' };
    let edited = format!("{}{last}", &token[..token.len() - 1]);
    let forged = [
        // Under the session cookie's own name: nonsense, a well-formed token
        // never issued, a genuine token with its last character changed.
        "__Host-vto_admin_session=authenticated".to_string(),
        format!("__Host-vto_admin_session={}", "A".repeat(43)),
        format!("__Host-vto_admin_session={edited}"),
        // A genuine token under another name is not a session.
        format!("vto_admin_session={token}"),
        "admin_auth=authenticated".to_string(),
    ];
    for cookie in forged {
        api.get("/admin/clients").header("cookie", &cookie).send().await.assert_error(401, "not_logged_in");
    }
    // The genuine cookie works, so the refusals above are for what was changed.
    api.get("/admin/clients").header("cookie", &genuine).expect(200).await;
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
async fn a_session_ends_seven_days_after_login_even_with_hourly_activity() {
    let t0 = now_ms();
    let admin = Api::shared().login_at(t0).await;
    // Hourly use keeps the idle timer from ever firing...
    for hour in 1..7 * 24 {
        let reply = session_at(&admin, t0 + hour * HOUR).await;
        assert_eq!(reply.status, 200, "hour {hour}: {}", reply.text);
    }
    // ...so only the absolute lifetime can end it: alive one second before, gone at seven days.
    assert_eq!(session_at(&admin, t0 + 7 * DAY - SECOND).await.status, 200);
    session_at(&admin, t0 + 7 * DAY).await.assert_error(401, "session_expired");
}

#[tokio::test]
async fn an_idle_session_expires_after_120_minutes_and_each_request_restarts_the_count() {
    let t0 = now_ms();
    let kept = Api::shared().login_at(t0).await;
    let left = Api::shared().login_at(t0).await;
    assert_eq!(session_at(&kept, t0 + (IDLE_MINUTES - 1) * MINUTE).await.status, 200);
    session_at(&left, t0 + (IDLE_MINUTES + 1) * MINUTE).await.assert_error(401, "session_expired");
    // The request at 119 minutes counted as activity: the idle time starts again from there.
    let touched = t0 + (IDLE_MINUTES - 1) * MINUTE;
    assert_eq!(session_at(&kept, touched + (IDLE_MINUTES - 1) * MINUTE).await.status, 200);
    let last = touched + (IDLE_MINUTES - 1) * MINUTE;
    session_at(&kept, last + (IDLE_MINUTES + 1) * MINUTE).await.assert_error(401, "session_expired");
}

#[tokio::test]
async fn the_session_reports_when_it_ends() {
    let t0 = crate::support::clock::at("2031-04-02T08:00:00Z");
    let admin = Api::shared().login_at(t0).await;
    let shown = session_at(&admin, t0 + 30 * MINUTE).await.body;
    assert_eq!(shown["expires_at"], "2031-04-09T08:00:00.000Z");
    assert_eq!(shown["idle_expires_at"], "2031-04-02T10:30:00.000Z");
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
