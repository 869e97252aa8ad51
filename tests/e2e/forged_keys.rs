//! Bad credentials cost nothing: a well-formed key naming a client that does
//! not exist writes no storage, a refused key is refused from memory next
//! time, and a source that keeps presenting bad keys is slowed down.

use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, Api};
use std::path::Path;
use tryon_edge::domain::api_key::{ApiKey, KeyKind};
use tryon_edge::domain::ids::ClientId;

/// Tables and rows our limiter objects stored, summed over every object's
/// SQLite file (read-only, with Python's sqlite3). Miniflare's own
/// bookkeeping (`__miniflare_do_name`, written locally for every object it
/// starts, never in production) and the runtime's `_cf_*` tables do not count.
fn stored_by_limiters(state_dir: &Path) -> String {
    let dir = state_dir.join("v3/do/tryon-edge-RateLimiter");
    let script = r#"
import glob, sqlite3, sys
tables = rows = 0
for f in glob.glob(sys.argv[1] + "/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    db = sqlite3.connect("file:" + f + "?mode=ro", uri=True)
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
             if not r[0].startswith(("__miniflare", "_cf_", "sqlite_"))]
    tables += len(names)
    rows += sum(db.execute('SELECT COUNT(*) FROM "%s"' % n).fetchone()[0] for n in names)
print(tables, rows)
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&dir).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn forged_key() -> String {
    ApiKey::generate(&ClientId::generate(), KeyKind::Secret).reveal().to_string()
}

#[tokio::test]
async fn bad_keys_write_nothing_are_refused_from_memory_and_slow_their_source_down() {
    let own = stack::start(StackOptions { vars: vec![("BAD_CREDENTIALS_PER_MINUTE".into(), "30".into())], ..Default::default() });
    let api = Api::new(&own);
    let admin = api.login().await;
    let client = admin.new_client().await;
    client.generate(&try_on(&marker())).expect(200).await;
    let before = stored_by_limiters(&own.state_dir);

    // Well-formed keys (valid checksum) naming made-up clients: each reaches
    // a fresh object, which answers from memory and stores nothing.
    for _ in 0..8 {
        api.post("/api/images/generate").header("x-api-key", &forged_key()).json(&try_on(&marker())).send().await.assert_error(401, "invalid_api_key");
    }
    assert_eq!(stored_by_limiters(&own.state_dir), before, "forged keys wrote Durable Object storage");

    // A forged key for a real client: refused by its object once, then from memory.
    let real = ApiKey::generate(&ClientId::parse(&client.id).unwrap(), KeyKind::Secret).reveal().to_string();
    let first = api.get("/api/usage").header("x-api-key", &real).send().await;
    first.assert_error(401, "invalid_api_key");
    assert!(first.header("server-timing").is_some_and(|t| t.contains("limiter")), "the first refusal asked the client's object");
    let again = api.get("/api/usage").header("x-api-key", &real).send().await;
    again.assert_error(401, "invalid_api_key");
    assert!(!again.header("server-timing").is_some_and(|t| t.contains("limiter")), "the second came from memory");
    // History with a forged key reads nothing and says so.
    api.get("/api/generations").header("x-api-key", &forged_key()).send().await.assert_error(401, "invalid_api_key");

    // 30 bad keys a minute from one source, then that source waits.
    let mut throttled = None;
    for i in 0..30 {
        let reply = api.get("/api/usage").header("x-api-key", &format!("vto_nope_{i}")).send().await;
        if reply.status == 429 {
            throttled = Some(reply);
            break;
        }
        reply.assert_error(401, "invalid_api_key");
    }
    let reply = throttled.expect("the source was slowed down within 30 bad keys");
    reply.assert_error(429, "too_many_invalid_credentials");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "retry-after {retry_after}");
    assert_eq!(stored_by_limiters(&own.state_dir), before, "and none of it wrote storage");

    // Whoever shares that address with a good key (a shop's server behind the
    // same NAT, shoppers on a carrier's shared address) keeps working: a key
    // admitted within the minute passes the throttle. A key this worker has
    // not seen yet waits like the rest, until it is admitted from elsewhere.
    let slowed = || api.get("/api/usage");
    slowed().header("x-api-key", &client.key).expect(200).await;
    let other = admin.new_client().await;
    slowed().header("x-api-key", &other.key).send().await.assert_error(429, "too_many_invalid_credentials");
    api.get("/api/usage").header("x-api-key", &other.key).header("cf-connecting-ip", "198.51.100.20").expect(200).await;
    slowed().header("x-api-key", &other.key).expect(200).await;
    slowed().header("x-api-key", &forged_key()).send().await.assert_error(429, "too_many_invalid_credentials");
}
