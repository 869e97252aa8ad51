//! Admin login throttling (rules in src/limiter/login.rs and the README's
//! "For operators"): attempts are counted before the password is compared,
//! per IPv4 address or IPv6 /64, and an attack from many sources slows
//! sources that already failed without ever locking out a clean one.
//! One dedicated stack; each step moves the test clock past the previous
//! step's window, so the steps do not see each other's attempts.

use crate::support::stack::{self, StackOptions, ADMIN_PASSWORD};
use crate::support::{Api, Reply};
use serde_json::json;

const WINDOW_MS: u64 = 15 * 60 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn attempt(api: &Api, ip: &str, password: &str, at: u64) -> Reply {
    api.post("/admin/login")
        .header("cf-connecting-ip", ip)
        .header("x-test-now", &at.to_string())
        .json(&json!({ "password": password }))
        .send()
        .await
}

#[tokio::test]
async fn login_throttling_counts_attempts_atomically_per_source_and_never_locks_out_a_clean_source() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);

    // 1. Twenty parallel guesses from one address: exactly ten are tried.
    let t0 = now_ms();
    let guesses = (0..20).map(|_| attempt(&api, "198.51.100.1", "guess", t0));
    let replies = futures::future::join_all(guesses).await;
    let tried = replies.iter().filter(|r| r.status == 401).count();
    let refused = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((tried, refused), (10, 10), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let locked = attempt(&api, "198.51.100.1", ADMIN_PASSWORD, t0 + 1000).await;
    locked.assert_error(429, "too_many_login_attempts");
    let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "about 15 minutes, got {retry}");

    // 2. Rotating addresses inside one IPv6 /64 is one source.
    let t1 = t0 + WINDOW_MS + 60_000;
    for i in 1..=10 {
        attempt(&api, &format!("2001:db8:1:2::{i:x}"), "guess", t1).await.assert_error(401, "invalid_credentials");
    }
    attempt(&api, "2001:db8:1:2:ffff:ffff:ffff:ffff", ADMIN_PASSWORD, t1).await.assert_error(429, "too_many_login_attempts");
    assert_eq!(attempt(&api, "2001:db8:1:3::1", ADMIN_PASSWORD, t1).await.status, 200, "the next /64 is another source");

    // 3. 110 failures from 110 addresses: the right password from a clean
    //    source still logs in at once; sources that failed are spaced out.
    let t2 = t1 + WINDOW_MS + 60_000;
    for i in 1..=110 {
        attempt(&api, &format!("203.0.113.{i}"), "guess", t2).await.assert_error(401, "invalid_credentials");
    }
    let clean = attempt(&api, "192.0.2.200", ADMIN_PASSWORD, t2 + 1000).await;
    assert_eq!(clean.status, 200, "a clean source is never locked out: {}", clean.text);
    attempt(&api, "203.0.113.1", "guess", t2 + 2000).await.assert_error(401, "invalid_credentials");
    let spaced = attempt(&api, "203.0.113.2", ADMIN_PASSWORD, t2 + 3000).await;
    spaced.assert_error(429, "too_many_login_attempts");
    let wait: u64 = spaced.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "at most a minute, got {wait}");
    assert_eq!(attempt(&api, "203.0.113.2", ADMIN_PASSWORD, t2 + 3000 + wait * 1000).await.status, 200);
}

#[tokio::test]
async fn changing_admin_password_ends_every_session() {
    let state_dir = stack::root().join(format!("target/e2e-state/password-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    let first = stack::start(StackOptions { state_dir: Some(state_dir.clone()), ..Default::default() });
    let admin = Api::new(&first).login().await;
    admin.get("/admin/session").expect(200).await;
    drop(first);

    let new_password = "a-brand-new-admin-password";
    let second = stack::start(StackOptions {
        state_dir: Some(state_dir),
        vars: vec![("ADMIN_PASSWORD".into(), new_password.into())],
        ..Default::default()
    });
    let api = Api::new(&second);
    let old_cookie = api.get("/admin/session").header("cookie", &admin.cookie).send().await;
    old_cookie.assert_error(401, "not_logged_in");
    api.post("/admin/login").json(&json!({ "password": ADMIN_PASSWORD })).send().await.assert_error(401, "invalid_credentials");
    let reply = api.post("/admin/login").json(&json!({ "password": new_password })).send().await;
    assert_eq!(reply.status, 200);
}
