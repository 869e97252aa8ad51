//! The scheduled handler, triggered the way the platform does, with an
//! injected time; and the maintenance stack's idle-timeout setting. Runs on
//! the maintenance stack: purging there cannot touch the sessions of tests
//! running on the shared one. The tests that run it take turns; the sessions
//! of the other tests on this stack live 40 days ahead, past every purge.

use crate::support::clock::{header, now_ms, DAY, HOUR, MINUTE};
use crate::support::stack::MAINTENANCE_IDLE_MINUTES;
use crate::support::{marker, stack, try_on, Api};

const RETENTION_DAYS: u64 = 396;

async fn session_at(admin: &crate::support::Admin, ms: u64) -> crate::support::Reply {
    admin.get("/admin/session").header("x-test-now", &header(ms)).send().await
}

/// The scheduled handler acts on every client's rows and every session, so
/// the tests that run it take turns: one test's cron never deletes another's
/// rows or sessions halfway through.
fn one_cron_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CRON: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CRON.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn run_cron(api: &Api, at_ms: u64) {
    let reply = api.get(&format!("/cdn-cgi/handler/scheduled?cron=17+*+*+*+*&time={at_ms}")).send().await;
    assert!(reply.status < 300, "scheduled handler failed: {} {}", reply.status, reply.text);
}

#[tokio::test]
async fn the_cron_purges_expired_sessions_and_keeps_live_ones() {
    let _turn = one_cron_test_at_a_time();
    let api = Api::new(stack::maintenance());
    let expired = api.login().await;
    let later = now_ms() + 8 * DAY;
    // Before the purge the server still knows the session, and says it expired...
    expired.get("/admin/session").header("x-test-now", &header(later)).send().await.assert_error(401, "session_expired");
    // ...a session that is live at that time is kept...
    let live = api.login_at(later).await;
    run_cron(&api, later + 1000).await;
    // ...and after it, the expired one is gone altogether.
    expired.get("/admin/session").header("x-test-now", &header(later)).send().await.assert_error(401, "not_logged_in");
    live.get("/admin/session").header("x-test-now", &header(later + 2000)).expect(200).await;
}

#[tokio::test]
async fn the_cron_deletes_generations_older_than_396_days_and_keeps_the_totals() {
    let _turn = one_cron_test_at_a_time();
    let api = Api::new(stack::maintenance());
    // A day in the past: this purge reaches no session of the tests here.
    let cron_at = now_ms() - DAY;
    let admin = api.login_at(now_ms() + 40 * DAY).await;
    let client = admin.new_client().await;
    let generate_at = |ms: u64| client.generate(&try_on(&marker())).header("x-test-now", &header(ms)).send();
    let mut kept = Vec::new();
    let mut deleted = Vec::new();
    for (age, expect_kept) in [
        (RETENTION_DAYS * DAY - DAY, true),
        (RETENTION_DAYS * DAY - HOUR, true),
        (RETENTION_DAYS * DAY + HOUR, false),
        (RETENTION_DAYS * DAY + DAY, false),
        (DAY, true),
    ] {
        let reply = generate_at(cron_at - age).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let id = reply.body["generation_id"].as_str().unwrap().to_string();
        if expect_kept { kept.push(id) } else { deleted.push(id) }
    }
    assert_eq!(client.history().await.len(), 5);

    run_cron(&api, cron_at).await;

    let mut left: Vec<String> = client.history().await.iter().map(|g| g["id"].as_str().unwrap().to_string()).collect();
    left.sort();
    kept.sort();
    assert_eq!(left, kept, "395 days and 395 days 23 h are kept; 396 days 1 h and 397 days are deleted ({deleted:?})");
    let metrics = admin.get(&format!("/admin/clients/{}/metrics", client.id)).header("x-test-now", &header(now_ms() + 40 * DAY)).expect(200).await;
    assert_eq!(metrics["total_generations"], 5, "the rollups keep counting deleted rows");
}

#[tokio::test]
async fn the_idle_timeout_follows_admin_session_idle_minutes() {
    // This stack sets ADMIN_SESSION_IDLE_MINUTES (45).
    let api = Api::new(stack::maintenance());
    // Forty days ahead: past both crons of this module, which would purge these sessions.
    let t0 = now_ms() + 40 * DAY;
    let kept = api.login_at(t0).await;
    let left = api.login_at(t0).await;
    assert_eq!(session_at(&kept, t0 + (MAINTENANCE_IDLE_MINUTES - 1) * MINUTE).await.status, 200);
    session_at(&left, t0 + (MAINTENANCE_IDLE_MINUTES + 1) * MINUTE).await.assert_error(401, "session_expired");
}
