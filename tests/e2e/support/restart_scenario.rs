//! The restart scenario (see `restart`), set up once: a runtime serves a few
//! clients, dies with generations in flight, and, while it is down, D1
//! receives a success that no worker settled (as a crash between recording
//! and settling leaves it) and one client's limiter loses its storage. It then
//! comes back without `ADMIN_PASSWORD` and without `WEBHOOK_SIGNING_KEY`.
//! A fixture here, not in the test module, so a full run can set it up in the
//! background while other tests run.

use super::clock::{at, header, MINUTE};
use super::receiver::Receiver;
use super::stack::{self, Stack, StackOptions};
use super::{inject, inject_after, marker, try_on, wait_until, Api, FaultMode, TestClient};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// Long, so a generation is still in flight when the runtime is stopped.
pub const FAL_TIMEOUT_MS: u64 = 30_000;
/// A reservation nobody settled expires after the FAL timeout plus a minute.
pub const RESERVATION_MS: u64 = FAL_TIMEOUT_MS + MINUTE;
pub const JOB_RESERVATION_MS: u64 = 15 * MINUTE;

// Test-clock instants, in the future so no alarm set before the restart fires by itself.
pub const RATE_AT: &str = "2031-11-03T09:00:00Z";
pub const HANG_AT: &str = "2031-11-04T09:00:00Z";
pub const JOB_AT: &str = "2031-11-05T09:00:00Z";
pub const LOST_AT: &str = "2031-11-06T09:00:00Z";

/// A client of the scenario: its id and key (requests go to the restarted runtime).
#[derive(Clone)]
pub struct Shop {
    pub id: String,
    pub key: String,
}

pub struct Scenario {
    pub after: Stack,
    /// 1 generation a minute; used its token just before the restart.
    pub rate: Shop,
    /// One generation at a time; it was in flight when the runtime died.
    pub capped: Shop,
    /// Also had a generation in flight when the runtime died.
    pub crashed: Shop,
    /// Its job's success reached D1 while the runtime was down, unsettled.
    pub job_shop: Shop,
    pub job_id: String,
    /// Two successes and a failure this month; then its limiter lost its storage.
    pub lost: Shop,
    /// Set a callback URL before the restart.
    pub called_back: Shop,
    pub receiver: Receiver,
}

impl Scenario {
    pub fn client(&self, shop: &Shop) -> TestClient {
        TestClient { api: Api::new(&self.after), id: shop.id.clone(), key: shop.key.clone(), created: Value::Null }
    }
}

pub fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(set_up)
}

fn set_up() -> Scenario {
    let options = StackOptions::default().var("FAL_TIMEOUT_MS", FAL_TIMEOUT_MS);
    let before = stack::start(options.clone());
    let base = before.base.clone();
    let (shops, job_id, receiver) = stack::block_on(async move { serve_until_the_crash(&base).await });
    let [rate, capped, crashed, job_shop, lost, called_back] = shops;

    let state_dir = before.stop();
    stack::d1_execute(
        &state_dir,
        &format!(
            "INSERT INTO generations (id, client_id, model, status, endpoint, duration_ms, garments_count, job_id, created_at) \
             VALUES ('gen_{suffix}', '{client}', 'fal-virtual-try-on', 'success', '/api/jobs', 1000, 1, '{job_id}', {created})",
            suffix = job_id.trim_start_matches("job_"),
            client = job_shop.id,
            created = at(JOB_AT) + MINUTE,
        ),
    );
    forget_limiter_storage(&state_dir, &lost.id);

    let after = stack::start(StackOptions { state_dir: Some(state_dir), ..options.unset("ADMIN_PASSWORD").unset("WEBHOOK_SIGNING_KEY") });
    Scenario { after, rate, capped, crashed, job_shop, job_id, lost, called_back, receiver }
}

/// Everything the first runtime does before it dies.
async fn serve_until_the_crash(base: &str) -> ([Shop; 6], String, Receiver) {
    let api = Api::at(base);
    let admin = api.login().await;
    let shop = |limits: Value| {
        let mut body = limits;
        body["name"] = json!(format!("Restart {}", marker()));
        admin.create_client(body)
    };
    let rate = shop(json!({ "rate_limit_per_minute": 1 })).await;
    let capped = shop(json!({ "max_concurrent": 1, "rate_limit_per_minute": 100 })).await;
    let crashed = shop(json!({})).await;
    let job_shop = shop(json!({})).await;
    let lost = shop(json!({ "usage_limit": 3 })).await;
    let called_back = shop(json!({})).await;
    let receiver = Receiver::start(0).await;
    admin.patch(&format!("/admin/clients/{}", called_back.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;

    rate.generate(&try_on(&marker())).header("x-test-now", &header(at(RATE_AT))).expect(200).await;

    let lost_at = header(at(LOST_AT));
    for _ in 0..2 {
        lost.generate(&try_on(&marker())).header("x-test-now", &lost_at).expect(200).await;
    }
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    lost.generate(&try_on(&failing)).header("x-test-now", &lost_at).send().await.assert_error(502, "upstream_error");

    // A job FAL is still working on.
    let slow = marker();
    inject_after(&slow, FaultMode::Slow, 120_000);
    let job = job_shop.post("/api/jobs").header("x-test-now", &header(at(JOB_AT))).json(&try_on(&slow)).expect(202).await;
    let job_id = job["id"].as_str().unwrap().to_string();

    // Generations FAL never answers: in flight when the runtime goes down.
    let hanging = marker();
    inject(&hanging, FaultMode::Hang);
    for client in [&capped, &crashed] {
        let (url, key, body) = (format!("{base}/api/images/generate"), client.key.clone(), try_on(&format!("{hanging}{}", client.id)));
        // Never answered: the runtime dies under it.
        tokio::spawn(async move {
            let _ = reqwest::Client::new().post(url).header("x-api-key", key).header("x-test-now", header(at(HANG_AT))).json(&body).send().await;
        });
    }
    wait_until("both hanging generations at FAL", Duration::from_secs(15), || async {
        let n = stack::emulator().requests_matching(&hanging).len();
        if n == 2 { Ok(()) } else { Err(format!("{n} at FAL")) }
    })
    .await;

    let keep = |c: &TestClient| Shop { id: c.id.clone(), key: c.key.clone() };
    ([keep(&rate), keep(&capped), keep(&crashed), keep(&job_shop), keep(&lost), keep(&called_back)], job_id, receiver)
}

/// Deletes the storage of `client`'s limiter object, as if it were lost. Each
/// object is its own SQLite file (with its journal files); its snapshot names
/// the client.
fn forget_limiter_storage(state_dir: &Path, client: &str) {
    let mut objects = Vec::new();
    collect_files(&state_dir.join("v3/do"), &mut objects);
    let mine: Vec<_> = objects
        .iter()
        .filter(|p| p.to_string_lossy().contains("RateLimiter") && p.extension().is_some_and(|e| e == "sqlite"))
        .filter(|p| {
            let journal = p.with_extension("sqlite-wal");
            [p.to_path_buf(), journal].iter().any(|f| std::fs::read(f).is_ok_and(|b| b.windows(client.len()).any(|w| w == client.as_bytes())))
        })
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "exactly one limiter object holds {client}: {mine:?} among {objects:?}");
    for suffix in ["sqlite", "sqlite-wal", "sqlite-shm"] {
        let _ = std::fs::remove_file(mine[0].with_extension(suffix));
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

