//! `bench soak [--seconds N]`: a bounded soak of mixed traffic (5 minutes by
//! default) against the worker under Miniflare and the FAL emulator, all on
//! loopback. Many clients: most with room to spare (sync generations, jobs
//! followed to the end, history and usage reads), some held at their rate,
//! concurrency and monthly limits, and callers with bad credentials of every
//! kind. Reports 5xx answers (goal 0), generations recorded against
//! successful responses (goal equal), quota overshoot (goal 0) and the
//! memory of the workerd processes over time. JSON to target/bench/soak.json.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NORMAL_CLIENTS: usize = 20;
const LIMITED_CLIENTS: usize = 5;
const NORMAL_CONNECTIONS: usize = 12;
const LIMITED_CONNECTIONS: usize = 4;
const BAD_CONNECTIONS: usize = 3;
const LIMITED_QUOTA: u64 = 100;

#[derive(Default)]
struct Tally {
    by_status: Mutex<BTreeMap<String, u64>>,
    server_errors: Mutex<Vec<String>>,
    /// Successful generations as the callers saw them, per client id.
    successes: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    slowest_ms: AtomicU64,
}

impl Tally {
    fn count(&self, what: &str, status: u16, elapsed: Duration, body: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.slowest_ms.fetch_max(elapsed.as_millis() as u64, Ordering::Relaxed);
        *self.by_status.lock().unwrap().entry(format!("{what} {status}")).or_default() += 1;
        if status >= 500 {
            let mut errors = self.server_errors.lock().unwrap();
            if errors.len() < 50 {
                errors.push(format!("{what} {status}: {}", body.chars().take(300).collect::<String>()));
            }
        }
    }

    fn success(&self, client: &str) {
        *self.successes.lock().unwrap().entry(client.to_string()).or_default() += 1;
    }
}

struct Client {
    id: String,
    key: String,
    limited: bool,
    /// The shop's servers' address (`cf-connecting-ip`, which Cloudflare sets
    /// and the local runtime passes through): bad credentials are throttled
    /// per source, and in production shops and attackers do not share one.
    source: String,
}

/// Where the callers with bad credentials come from (TEST-NET-3).
const ATTACKER_SOURCE: &str = "203.0.113.7";

pub async fn run(root: &Path, seconds: u64) {
    let state = super::state_dir(root).with_file_name("tryon-soak-state");
    super::fresh_state(root, &state);
    let (_emulator, fal_url) = super::start_emulator(root).await;
    let (server, _) = super::start_worker(root, &state, &fal_url).await;
    let base = server.1.clone();
    let node_pid = server.0 .0.id();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).timeout(Duration::from_secs(30)).build().unwrap();
    let cookie = super::login(&http, &base).await;

    let mut clients = Vec::new();
    for i in 0..NORMAL_CLIENTS + LIMITED_CLIENTS {
        let limited = i >= NORMAL_CLIENTS;
        let body = if limited {
            json!({ "name": format!("Soak limited {i}"), "rate_limit_per_minute": 30, "max_concurrent": 2, "usage_limit": LIMITED_QUOTA })
        } else {
            json!({ "name": format!("Soak shop {i}"), "rate_limit_per_minute": 100000, "max_concurrent": 1000, "usage_limit": 100000000 })
        };
        let created: Value = http.post(format!("{base}/admin/clients")).header("cookie", &cookie).json(&body).send().await.unwrap().json().await.unwrap();
        clients.push(Arc::new(Client {
            id: created["client"]["id"].as_str().unwrap().to_string(),
            key: created["api_key"].as_str().unwrap().to_string(),
            limited,
            source: format!("198.51.100.{}", i + 1),
        }));
    }
    let try_on = super::try_on(&fal_url);
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    println!("soaking {base} for {seconds} s: {NORMAL_CONNECTIONS} connections of {NORMAL_CLIENTS} shops, {LIMITED_CONNECTIONS} at their limits, {BAD_CONNECTIONS} with bad credentials");

    let memory = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let sampler = {
        let (memory, stop) = (memory.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                memory.lock().unwrap().push((started.elapsed().as_secs(), workerd_rss_kib(node_pid)));
                for _ in 0..100 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    };

    let mut tasks = Vec::new();
    for c in 0..NORMAL_CONNECTIONS + LIMITED_CONNECTIONS {
        let limited = c >= NORMAL_CONNECTIONS;
        let pool: Vec<Arc<Client>> = clients.iter().filter(|cl| cl.limited == limited).cloned().collect();
        let (http, base, body, tally, stop) = (http.clone(), base.clone(), try_on.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let client = &pool[n % pool.len()];
                shop_step(&http, &base, client, &body, n, &tally).await;
            }
        }));
    }
    // Callers with bad credentials have connections of their own, as they
    // would on the internet, and a new one for each request: a request
    // refused before its body is read (no key at all) leaves the body
    // unread, so the runtime closes that connection after answering, and a
    // client reusing it would see a reset that says nothing of the worker.
    let attackers = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(0).build().unwrap();
    for client in clients.iter().take(BAD_CONNECTIONS) {
        let (http, base, body, tally, stop) = (attackers.clone(), base.clone(), try_on.clone(), tally.clone(), stop.clone());
        let victim = client.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                bad_credentials_step(&http, &base, &victim, &body, n, &tally).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let _ = sampler.await;
    let traffic_s = started.elapsed().as_secs_f64();

    // Settle: every reservation ends, then compare the three counts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let month = chrono_month();
    let report: Value = http.get(format!("{base}/admin/usage?month={month}")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    let successes = tally.successes.lock().unwrap().clone();
    let mut rows = Vec::new();
    let (mut recorded_total, mut answered_total, mut charged_total, mut overshoot_total) = (0, 0, 0, 0);
    for client in &clients {
        let recorded = report["clients"].as_array().unwrap().iter().find(|r| r["client_id"] == client.id.as_str()).and_then(|r| r["successful_generations"].as_u64()).unwrap_or(0);
        let usage: Value = http.get(format!("{base}/api/usage")).header("x-api-key", &client.key).send().await.unwrap().json().await.unwrap();
        let charged = usage["used"].as_u64().unwrap_or(0);
        let answered = successes.get(&client.id).copied().unwrap_or(0);
        let limit = usage["limit"].as_u64().unwrap_or(0);
        let overshoot = charged.saturating_sub(limit);
        recorded_total += recorded;
        answered_total += answered;
        charged_total += charged;
        overshoot_total += overshoot;
        rows.push(json!({ "client": client.id, "limited": client.limited, "successful_responses": answered, "recorded": recorded, "charged": charged, "limit": limit, "overshoot": overshoot, "in_progress": usage["in_progress"] }));
    }
    let memory = memory.lock().unwrap().clone();
    let server_errors = tally.server_errors.lock().unwrap().clone();
    let by_status = tally.by_status.lock().unwrap().clone();
    let five_xx: u64 = by_status.iter().filter(|(k, _)| k.ends_with(" 5") || k.split(' ').next_back().is_some_and(|s| s.starts_with('5'))).map(|(_, v)| v).sum();
    let summary = json!({
        "seconds": traffic_s,
        "requests": tally.requests.load(Ordering::Relaxed),
        "requests_per_second": tally.requests.load(Ordering::Relaxed) as f64 / traffic_s,
        "slowest_ms": tally.slowest_ms.load(Ordering::Relaxed),
        "server_errors_5xx": five_xx,
        "server_error_samples": server_errors,
        "successful_responses": answered_total,
        "generations_recorded": recorded_total,
        "generations_charged": charged_total,
        "quota_overshoot": overshoot_total,
        "by_status": by_status,
        "clients": rows,
        "workerd_rss_kib": memory,
    });
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("soak.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    print_summary(&summary);
    drop(server);
}

/// One step of a shop: mostly sync generations, some jobs followed to
/// their end, some history and usage reads.
async fn shop_step(http: &reqwest::Client, base: &str, client: &Client, body: &str, n: usize, tally: &Tally) {
    let key = client.key.as_str();
    let http = &SourcedClient { http, source: &client.source };
    match n % 10 {
        0..=5 => {
            let (status, text, elapsed) = send(http.post(format!("{base}/api/images/generate")).header("x-api-key", key).header("content-type", "application/json").body(body.to_string())).await;
            tally.count("POST /api/images/generate", status, elapsed, &text);
            if status == 200 {
                tally.success(&client.id);
            }
        }
        6 | 7 => {
            let (status, text, elapsed) = send(http.post(format!("{base}/api/jobs")).header("x-api-key", key).header("content-type", "application/json").body(body.to_string())).await;
            tally.count("POST /api/jobs", status, elapsed, &text);
            if status != 202 {
                return;
            }
            let id = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["id"].as_str().map(String::from)).unwrap_or_default();
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let (status, text, elapsed) = send(http.get(format!("{base}/api/jobs/{id}")).header("x-api-key", key)).await;
                tally.count("GET /api/jobs/{id}", status, elapsed, &text);
                let job: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match job["status"].as_str() {
                    Some("done") => return tally.success(&client.id),
                    Some("error" | "canceled") => return,
                    _ if status != 200 => return,
                    _ => {}
                }
            }
        }
        8 => {
            let (status, text, elapsed) = send(http.get(format!("{base}/api/generations?limit=20")).header("x-api-key", key)).await;
            tally.count("GET /api/generations", status, elapsed, &text);
        }
        _ => {
            let (status, text, elapsed) = send(http.get(format!("{base}/api/usage")).header("x-api-key", key)).await;
            tally.count("GET /api/usage", status, elapsed, &text);
        }
    }
}

/// Callers without a valid credential: forged well-formed keys, keys of a
/// real client with a wrong secret, malformed and non-ASCII keys, none.
async fn bad_credentials_step(http: &reqwest::Client, base: &str, victim: &str, body: &str, n: usize, tally: &Tally) {
    use tryon_edge::domain::api_key::{ApiKey, KeyKind};
    use tryon_edge::domain::ids::ClientId;
    // SOAK_KNOWN_CLIENTS_ONLY=1 forges keys for real clients only, to tell
    // the cost of keys naming clients that do not exist (a limiter object
    // each) from the rest.
    let known_only = std::env::var("SOAK_KNOWN_CLIENTS_ONLY").as_deref() == Ok("1");
    let forged = match n % 2 {
        0 if !known_only => ApiKey::generate(&ClientId::generate(), KeyKind::Secret).reveal().to_string(),
        0 => ApiKey::generate(&ClientId::parse(victim).unwrap(), KeyKind::Secret).reveal().to_string(),
        _ => ApiKey::generate(&ClientId::parse(victim).unwrap(), KeyKind::Secret).reveal().to_string(),
    };
    let mut non_ascii = b"vto_aaaaaaaaaaaaaaa".to_vec();
    non_ascii.push(0xE9);
    non_ascii.extend(b"_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let request = match n % 5 {
        0 | 1 => http.post(format!("{base}/api/images/generate")).header("x-api-key", forged).header("content-type", "application/json").body(body.to_string()),
        2 => http.get(format!("{base}/api/usage")).header("x-api-key", reqwest::header::HeaderValue::from_bytes(&non_ascii).unwrap()),
        3 => http.get(format!("{base}/api/generations")).header("authorization", "Bearer not-a-key"),
        _ => http.post(format!("{base}/api/jobs")).header("content-type", "application/json").body(body.to_string()),
    };
    let (status, text, elapsed) = send(request.header("cf-connecting-ip", ATTACKER_SOURCE)).await;
    tally.count("bad credentials", status, elapsed, &text);
}

/// A shop's requests, all from its own address.
struct SourcedClient<'a> {
    http: &'a reqwest::Client,
    source: &'a str,
}

impl SourcedClient<'_> {
    fn get(&self, url: String) -> reqwest::RequestBuilder {
        self.http.get(url).header("cf-connecting-ip", self.source)
    }

    fn post(&self, url: String) -> reqwest::RequestBuilder {
        self.http.post(url).header("cf-connecting-ip", self.source)
    }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, String, Duration) {
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, text, started.elapsed())
        }
        // A connection the worker dropped counts as a server error.
        Err(e) => {
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            (599, chain, started.elapsed())
        }
    }
}

/// Resident memory of every workerd process under `parent` (Miniflare's node).
fn workerd_rss_kib(parent: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if !descends_from(pid, parent) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if !status.lines().any(|l| l.starts_with("Name:") && l.contains("workerd")) {
            continue;
        }
        total += status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    total
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..16 {
        if pid == ancestor {
            return true;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The parent is the 2nd field after the parenthesised command name.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        match parent {
            Some(p) if p != 0 => pid = p,
            _ => return false,
        }
    }
    false
}

fn chrono_month() -> String {
    let days = super::now_ms() / 86_400_000;
    // Civil-from-days (Howard Hinnant), enough for a YYYY-MM key.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

fn print_summary(s: &Value) {
    println!("\n== soak: {:.0} s, {} requests ({:.0}/s), slowest {} ms", s["seconds"].as_f64().unwrap_or(0.0), s["requests"], s["requests_per_second"].as_f64().unwrap_or(0.0), s["slowest_ms"]);
    println!("5xx answers:                    {} (goal 0)", s["server_errors_5xx"]);
    println!("successful responses:           {}", s["successful_responses"]);
    println!("generations recorded (D1):      {} (goal: equal)", s["generations_recorded"]);
    println!("generations charged (limiter):  {} (goal: equal)", s["generations_charged"]);
    println!("quota overshoot:                {} (goal 0)", s["quota_overshoot"]);
    let memory = s["workerd_rss_kib"].as_array().cloned().unwrap_or_default();
    let points: Vec<String> = memory.iter().step_by((memory.len() / 10).max(1)).map(|p| format!("{}s:{}MiB", p[0], p[1].as_u64().unwrap_or(0) / 1024)).collect();
    println!("workerd RSS over time:          {}", points.join(" "));
    println!("answers by kind:");
    for (k, v) in s["by_status"].as_object().cloned().unwrap_or_default() {
        println!("  {k:<40} {v}");
    }
    for e in s["server_error_samples"].as_array().cloned().unwrap_or_default() {
        println!("  5xx: {}", e.as_str().unwrap_or_default());
    }
}
