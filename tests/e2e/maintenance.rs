//! The scheduled handler, triggered the way the platform does, with an
//! injected time. Runs on its own stack: purging there cannot touch the
//! sessions of tests running on the shared one.

use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, Api};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn run_cron(api: &Api, at_ms: u64) {
    let reply = api.get(&format!("/cdn-cgi/handler/scheduled?cron=17+*+*+*+*&time={at_ms}")).send().await;
    assert!(reply.status < 300, "scheduled handler failed: {} {}", reply.status, reply.text);
}

#[tokio::test]
async fn the_cron_purges_expired_sessions_and_keeps_live_ones() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    let expired = api.login().await;
    let later = now_ms() + 8 * DAY_MS;
    let at = later.to_string();
    // Before the purge the server still knows the session, and says it expired...
    expired.get("/admin/session").header("x-test-now", &at).send().await.assert_error(401, "session_expired");
    // ...a session that is live at that time is kept...
    let live = api.post("/admin/login").header("x-test-now", &at).json(&serde_json::json!({"password": stack::ADMIN_PASSWORD})).send().await;
    let cookie = live.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    run_cron(&api, later + 1000).await;
    // ...and after it, the expired one is gone altogether.
    expired.get("/admin/session").header("x-test-now", &at).send().await.assert_error(401, "not_logged_in");
    api.get("/admin/session").header("cookie", &cookie).header("x-test-now", &(later + 2000).to_string()).expect(200).await;
}

#[tokio::test]
async fn the_cron_deletes_generations_past_retention_and_keeps_the_totals() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    let admin = api.login().await;
    let client = admin.new_client().await;
    let now = now_ms();
    let fourteen_months_ago = (now - 425 * DAY_MS).to_string();
    let old = client.generate(&try_on(&marker())).header("x-test-now", &fourteen_months_ago).expect(200).await;
    let recent = client.generate(&try_on(&marker())).expect(200).await;
    assert_eq!(client.history().await.len(), 2);

    run_cron(&api, now).await;

    let history = client.history().await;
    assert_eq!(history.len(), 1, "only the recent generation is left");
    assert_eq!(history[0]["id"], recent["generation_id"]);
    assert_ne!(history[0]["id"], old["generation_id"]);
    let metrics = admin.get(&format!("/admin/clients/{}/metrics", client.id)).expect(200).await;
    assert_eq!(metrics["total_generations"], 2, "the rollups keep counting deleted rows");
}
