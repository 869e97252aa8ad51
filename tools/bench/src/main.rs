//! `bench [--quick]`: the benchmark behind `scripts/bench.sh`.
//!
//! Starts the FAL emulator (no added latency, no image work) and the built
//! worker under Miniflare with the inspector off, on a fresh state folder;
//! seeds 1,000 clients with generous limits; warms up; drives 16 connections
//! for 10 s per endpoint, twice; then grows the data to 100,000 clients and
//! 1,000,000 generations over 400 days and measures again, adding the
//! dashboard's aggregate calls. Prints tables and writes JSON to target/bench/.

mod costs;
mod latency;
mod load;
mod memory;
mod seed;
mod soak;

use load::{MakeReq, Req, Stats};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CONNECTIONS: usize = 16;
const FAL_KEY: &str = "bench-fal-key";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const ENDPOINTS: [&str; 6] = ["GET /health", "POST /api/images/generate", "POST /api/jobs", "GET /api/jobs/{id}", "GET /api/generations", "GET /admin/clients/{id}/metrics"];

struct Settings {
    seconds: u64,
    repetitions: usize,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `bench probe BASE METHOD PATH [API_KEY] [BODY]`: one endpoint, 16 connections, 5 s.
    if args.get(1).map(String::as_str) == Some("probe") {
        let (base, method, path) = (args[2].clone(), args[3].clone(), args[4].clone());
        let key = args.get(5).cloned().unwrap_or_default();
        let body = args.get(6).cloned();
        let make: MakeReq = Arc::new(move |_| {
            let mut r = match &body {
                Some(b) => Req::post_json(path.clone(), b.clone()),
                None => Req::get(path.clone()),
            };
            r.method = method.parse().unwrap();
            r.header("x-api-key", &key)
        });
        let stats = load::run(&reqwest::Client::new(), &base, make, CONNECTIONS, Duration::from_secs(5)).await;
        println!("{}", serde_json::to_string(&stats).unwrap());
        return;
    }
    // `bench soak [--seconds N]`: mixed traffic for N seconds (default 300); see soak.rs.
    if args.get(1).map(String::as_str) == Some("soak") {
        let seconds = args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(300);
        soak::run(&root(), seconds).await;
        return;
    }
    // `bench costs [--requests N] [--floor]`: billable operations per request and their price (and the floor's); see costs.rs.
    if args.get(1).map(String::as_str) == Some("costs") {
        let requests = args.iter().position(|a| a == "--requests").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(20);
        costs::run(&root(), requests, args.iter().any(|a| a == "--floor")).await;
        return;
    }
    // `bench latency [--seconds N]`: time added over a 2 s FAL, from Server-Timing; see latency.rs.
    if args.get(1).map(String::as_str) == Some("latency") {
        let seconds = args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(10);
        latency::run(&root(), seconds).await;
        return;
    }
    // `bench memory`: peak wasm memory for the largest requests the caps admit; see memory.rs.
    if args.get(1).map(String::as_str) == Some("memory") {
        memory::run(&root()).await;
        return;
    }
    // `bench seed STATE CLIENTS GENERATIONS DAYS`: fill a local D1 (the worker must be stopped).
    if args.get(1).map(String::as_str) == Some("seed") {
        let number = |i: usize| args.get(i).and_then(|v| v.parse::<usize>().ok()).expect("usage: bench seed STATE CLIENTS GENERATIONS DAYS");
        let state = PathBuf::from(args.get(2).expect("usage: bench seed STATE CLIENTS GENERATIONS DAYS"));
        let started = Instant::now();
        let seeded = seed::seed(&state, number(3), number(4), number(5) as u64, now_ms()).unwrap_or_else(|e| panic!("seeding failed: {e}"));
        println!(
            "seeded {} clients in {:.1} s; the database now holds {:?} (clients, generations)",
            seeded.clients.len(),
            started.elapsed().as_secs_f64(),
            seed::counts(&state).unwrap()
        );
        return;
    }
    // `bench serve`: the benchmark's stack (fresh state, 1,000 clients) left running for probing.
    if args.get(1).map(String::as_str) == Some("serve") {
        let root = root();
        let state = state_dir(&root);
        fresh_state(&root, &state);
        let (_emulator, fal_url) = start_emulator(&root).await;
        let small = seed::seed(&state, 1_000, 0, 400, now_ms()).expect("seeding");
        let (server, _) = start_worker(&root, &state, &fal_url).await;
        println!("{}", json!({ "base": server.1, "fal": fal_url, "client": small.clients[0].0, "key": small.clients[0].1, "body": try_on(&fal_url) }));
        tokio::signal::ctrl_c().await.unwrap();
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick { Settings { seconds: 3, repetitions: 1 } } else { Settings { seconds: 10, repetitions: 2 } };
    let root = root();
    let state = state_dir(&root);
    fresh_state(&root, &state);

    let (_emulator, fal_url) = start_emulator(&root).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();

    let wasm = std::fs::read(root.join("build/index_bg.wasm")).expect("build/index_bg.wasm");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&wasm).unwrap();
    let wasm_gzip = gz.finish().unwrap().len();

    let small = seed::seed(&state, 1_000, 0, 400, now_ms()).expect("seeding");
    let keys: Vec<(String, String)> = small.clients.clone();
    // The JavaScript worker of the same flow looks the same keys up in D1:
    // it gets a copy of the seeded database, untouched by our run.
    let js_state = sibling(&state, "js");
    fresh_state(&root, &js_state);
    copy_database(&state, &js_state);
    // So does the floor: its key checks and history reads find the same rows ours do.
    let floor_state = sibling(&state, "floor");
    fresh_state(&root, &floor_state);
    copy_database(&state, &floor_state);

    println!("\n== small data set: {:?} (clients, generations)", seed::counts(&state).unwrap());
    let (server, startup) = start_worker(&root, &state, &fal_url).await;
    let small_results = suite(&http, &server.1, &fal_url, &keys, &settings, true).await;
    let small_dashboard = dashboard(&http, &server.1, &keys).await;
    drop(server);

    // The platform floor: the same binding calls from a plain JS worker, same runtime set-up.
    println!("\n== platform floor (bench/floor.mjs: the same binding calls, no logic)");
    let (floor_server, _) = start_script(&root, &floor_state, &fal_url, "bench/floor.mjs").await;
    let floor_results = suite(&http, &floor_server.1, &fal_url, &keys, &settings, true).await;
    drop(floor_server);
    let _ = std::fs::remove_dir_all(&floor_state);

    // The obvious alternative: a plain JavaScript worker of the same flow
    // (it has no admin API, so the metrics row is not measured).
    println!("\n== plain JavaScript worker of the same flow (bench/js-flow.mjs)");
    let (js_server, _) = start_script(&root, &js_state, &fal_url, "bench/js-flow.mjs").await;
    let js_results = suite(&http, &js_server.1, &fal_url, &keys, &settings, false).await;
    drop(js_server);
    let _ = std::fs::remove_dir_all(&js_state);

    // The fixed cost of a request, where drift between phases would swamp
    // it: our worker, the smallest workers-rs worker and the plain JS worker
    // run side by side, probed on `/health` in turn, round after round.
    println!("\n== /health side by side (ours, minimal workers-rs, plain JavaScript), alternating");
    let health = health_side_by_side(&root, &state, &fal_url, &http, &settings).await;

    println!("\n== seeding 99,000 more clients and 1,000,000 generations over 400 days…");
    let seeding = Instant::now();
    seed::seed(&state, 99_000, 1_000_000, 400, now_ms()).expect("seeding");
    let seed_s = seeding.elapsed().as_secs_f64();
    println!("   seeded in {seed_s:.1} s: {:?} (clients, generations)", seed::counts(&state).unwrap());
    let (server, startup_large) = start_worker(&root, &state, &fal_url).await;
    let large_results = suite(&http, &server.1, &fal_url, &keys, &settings, true).await;
    let large_dashboard = dashboard(&http, &server.1, &keys).await;
    drop(server);

    println!("\nwasm: {} bytes raw, {} bytes gzip", wasm.len(), wasm_gzip);
    println!("start to first successful response: {startup} ms (small), {startup_large} ms (large)");
    print_table("small: 1,000 clients, 0 generations", &small_results);
    print_floor(&small_results, &floor_results);
    print_js(&small_results, &js_results);
    print_health(&health);
    print_targets(&small_results, &floor_results, &js_results, &health);
    print_table("large: 100,000 clients, 1,000,000 generations", &large_results);
    print_growth(&small_results, &large_results);
    print_dashboard(&small_dashboard, &large_dashboard);

    let report = json!({
        "at": now_ms(),
        "settings": { "connections": CONNECTIONS, "seconds": settings.seconds, "repetitions": settings.repetitions },
        "wasm_bytes": wasm.len(), "wasm_gzip_bytes": wasm_gzip,
        "startup_ms": { "small": startup, "large": startup_large },
        "seed_seconds": seed_s,
        "small": small_results, "large": large_results, "floor": floor_results, "js_flow": js_results, "health_side_by_side": health,
        "dashboard_ms": { "small": small_dashboard, "large": large_dashboard },
    });
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("results-{}.json", now_ms() / 1000));
    std::fs::write(&file, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    std::fs::write(dir.join("latest.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nresults: {}", file.display());
}

/// Where the benchmark keeps D1, KV and Durable Object state: in memory
/// (`/dev/shm`) when the machine has it. In production those are remote,
/// replicated services; a local SQLite file's fsync on this VM's disk is not
/// their cost, and it halved the rate of storage writes in the runtime.
/// `BENCH_STATE` overrides (e.g. a folder on disk, to compare).
fn state_dir(root: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_STATE") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join("tryon-bench-state")
    } else {
        root.join("target/bench-state")
    }
}

/// A state folder next to `state` for another worker of the same run.
fn sibling(state: &Path, suffix: &str) -> PathBuf {
    state.with_file_name(format!("{}-{suffix}", state.file_name().unwrap().to_string_lossy()))
}

/// Replaces `to`'s D1 database with a copy of `from`'s (both migrated; no worker running on either).
fn copy_database(from: &Path, to: &Path) {
    let (from, to) = (from.join("v3/d1/miniflare-D1DatabaseObject"), to.join("v3/d1/miniflare-D1DatabaseObject"));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).expect("a migrated D1 folder") {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Empties `state` and applies the D1 migrations to it.
fn fresh_state(root: &Path, state: &Path) {
    let _ = std::fs::remove_dir_all(state);
    std::fs::create_dir_all(state).unwrap();
    migrate(root, state);
}

fn migrate(root: &Path, state: &Path) {
    let out = Command::new("node")
        .arg(root.join("node_modules/wrangler/bin/wrangler.js"))
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(state)
        .current_dir(root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .output()
        .expect("wrangler runs");
    assert!(out.status.success(), "migrations failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The FAL emulator with no added latency and no image work.
async fn start_emulator(root: &Path) -> (Killed, String) {
    start_emulator_with_latency(root, 0).await
}

/// The emulator, adding `latency_ms` to every model call (as inference would).
async fn start_emulator_with_latency(root: &Path, latency_ms: u64) -> (Killed, String) {
    let fal_port = free_port();
    let emulator = Killed(
        Command::new(root.join("target/release/fal-emulator"))
            .args(["--port", &fal_port.to_string(), "--api-key", FAL_KEY, "--latency-ms", &latency_ms.to_string(), "--compose", "false"])
            .stdout(Stdio::null())
            .spawn()
            .expect("the FAL emulator starts (scripts/bench.sh builds it)"),
    );
    let fal_url = format!("http://127.0.0.1:{fal_port}");
    wait_ok(&reqwest::Client::new(), &format!("{fal_url}/health")).await;
    (emulator, fal_url)
}

async fn wait_ok(http: &reqwest::Client, url: &str) {
    for _ in 0..600 {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

/// Starts the worker under Miniflare; returns it and the milliseconds from
/// spawning the process to the first successful response.
async fn start_worker(root: &Path, state: &Path, fal_url: &str) -> ((Killed, String), u64) {
    // BENCH_SCRIPT: another build of the worker (to compare build settings).
    let script = std::env::var("BENCH_SCRIPT").unwrap_or_else(|_| "build/index.js".into());
    start_script(root, state, fal_url, &script).await
}

async fn start_script(root: &Path, state: &Path, fal_url: &str, script: &str) -> ((Killed, String), u64) {
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(root.join("bench/server.mjs"))
        .current_dir(root)
        .env("STATE", state)
        .env("SCRIPT", script)
        .env("FAL_URL", fal_url)
        .env("FAL_KEY", FAL_KEY)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs bench/server.mjs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("server said {line:?}"));
    let base = ready["url"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    wait_ok(&http, &format!("{base}/health")).await;
    let startup = started.elapsed().as_millis() as u64;
    ((Killed(child), base), startup)
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let r = http.post(format!("{base}/admin/login")).json(&json!({ "password": ADMIN_PASSWORD })).send().await.unwrap();
    assert!(r.status().is_success(), "login failed");
    r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
}

fn try_on(fal_url: &str) -> String {
    json!({
        "model": "fal-virtual-try-on",
        "person_image_url": format!("{fal_url}/samples/person.png"),
        "garment_image_urls": [format!("{fal_url}/samples/garment.png")],
    })
    .to_string()
}

/// Warm-up, then every endpoint under load (the admin call only if `admin`).
async fn suite(http: &reqwest::Client, base: &str, fal_url: &str, keys: &[(String, String)], s: &Settings, admin: bool) -> Vec<(String, Vec<Stats>)> {
    let keys: Arc<Vec<(String, String)>> = Arc::new(keys.to_vec());
    let cookie = if admin { login(http, base).await } else { String::new() };
    // Every client's limiter loads its copy from D1 once; do that before measuring.
    let warm: MakeReq = {
        let keys = keys.clone();
        Arc::new(move |i| Req::get("/api/usage").header("x-api-key", &keys[i % keys.len()].1))
    };
    load::run(http, base, warm, CONNECTIONS, Duration::from_secs(3)).await;
    // Jobs to read back, finished by the emulator's webhooks.
    let mut jobs = Vec::new();
    for (_, key) in keys.iter().take(200) {
        // A dropped keep-alive connection is retried once; a job that still
        // fails is left out (its reads would only measure 404s).
        for _ in 0..2 {
            let sent = http.post(format!("{base}/api/jobs")).header("x-api-key", key).header("content-type", "application/json").body(try_on(fal_url)).send().await;
            let Ok(r) = sent else { continue };
            if let Some(id) = r.json::<Value>().await.ok().and_then(|b| b["id"].as_str().map(str::to_string)) {
                jobs.push((key.clone(), id));
            }
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let jobs = Arc::new(jobs);
    let body = try_on(fal_url);

    let makers: Vec<MakeReq> = vec![
        Arc::new(|_| Req::get("/health")),
        {
            let (keys, body) = (keys.clone(), body.clone());
            Arc::new(move |i| Req::post_json("/api/images/generate", body.clone()).header("x-api-key", &keys[i % keys.len()].1))
        },
        {
            let (keys, body) = (keys.clone(), body.clone());
            Arc::new(move |i| Req::post_json("/api/jobs", body.clone()).header("x-api-key", &keys[i % keys.len()].1))
        },
        {
            let jobs = jobs.clone();
            Arc::new(move |i| {
                let (key, id) = &jobs[i % jobs.len()];
                Req::get(format!("/api/jobs/{id}")).header("x-api-key", key)
            })
        },
        {
            let keys = keys.clone();
            Arc::new(move |i| Req::get("/api/generations?limit=20").header("x-api-key", &keys[i % keys.len()].1))
        },
        {
            let (keys, cookie) = (keys.clone(), cookie.clone());
            Arc::new(move |i| Req::get(format!("/admin/clients/{}/metrics", keys[i % keys.len()].0)).header("cookie", &cookie))
        },
    ];
    // A short warm-up per endpoint, then the measured repetitions.
    let mut results = Vec::new();
    for (name, make) in ENDPOINTS.iter().zip(makers).filter(|(name, _)| admin || !name.contains("/admin/")) {
        load::run(http, base, make.clone(), CONNECTIONS, Duration::from_secs(2)).await;
        let mut reps = Vec::new();
        for _ in 0..s.repetitions {
            reps.push(load::run(http, base, make.clone(), CONNECTIONS, Duration::from_secs(s.seconds)).await);
        }
        println!("   {name:<34} {:>8.0} req/s  p50 {:>6.1} ms", mean(&reps, |r| r.rps), mean(&reps, |r| r.p50_ms));
        results.push((name.to_string(), reps));
    }
    results
}

fn mean(reps: &[Stats], f: impl Fn(&Stats) -> f64) -> f64 {
    reps.iter().map(&f).sum::<f64>() / reps.len().max(1) as f64
}

/// Each dashboard call, 20 times in a row: p50 and max in ms.
async fn dashboard(http: &reqwest::Client, base: &str, keys: &[(String, String)]) -> Value {
    let cookie = login(http, base).await;
    let client = &keys[0].0;
    let month = tryon_edge::domain::time::month_key(now_ms());
    let calls = [
        ("overview", "/admin/overview".to_string()),
        ("clients (100)", "/admin/clients?limit=100".to_string()),
        ("client metrics", format!("/admin/clients/{client}/metrics")),
        ("client stats (30 days)", format!("/admin/clients/{client}/stats?days=30")),
        ("generations (100)", "/admin/generations?limit=100".to_string()),
        ("generations, errors of a client", format!("/admin/generations?client_id={client}&status=error&limit=100")),
        ("usage for the month (JSON)", format!("/admin/usage?month={month}")),
    ];
    let mut out = serde_json::Map::new();
    for (name, path) in calls {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            let _ = r.bytes().await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out.insert(name.to_string(), json!({ "p50_ms": load::percentile(&times, 0.5), "max_ms": times[times.len() - 1] }));
    }
    Value::Object(out)
}

fn print_table(title: &str, results: &[(String, Vec<Stats>)]) {
    println!("\n{title} ({CONNECTIONS} connections; each row: mean of the repetitions)");
    println!("{:<34} {:>9} {:>8} {:>8} {:>8} {:>8}  server timing (mean ms)", "endpoint", "req/s", "p50 ms", "p95 ms", "p99 ms", "non-2xx");
    for (name, reps) in results {
        let non_2xx: usize = reps.iter().map(|r| r.non_2xx).sum();
        let timing = reps.last().map(|r| r.server_timing_ms.iter().map(|(k, v)| format!("{k} {v:.1}")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        println!(
            "{name:<34} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8}  {timing}",
            mean(reps, |r| r.rps),
            mean(reps, |r| r.p50_ms),
            mean(reps, |r| r.p95_ms),
            mean(reps, |r| r.p99_ms),
            non_2xx
        );
    }
    let health = mean(&results[0].1, |r| r.rps);
    for (name, reps) in &results[1..] {
        println!("  {name:<32} {:>5.0}% of /health req/s", 100.0 * mean(reps, |r| r.rps) / health);
    }
}

/// Each endpoint against the floor worker's rate for the same binding calls,
/// and both against `/health` of their own run.
fn print_floor(ours: &[(String, Vec<Stats>)], floor: &[(String, Vec<Stats>)]) {
    println!("\nagainst the platform floor (a JS worker making the same binding calls, measured in the same run)");
    println!("{:<34} {:>9} {:>9} {:>9} {:>12} {:>12}", "endpoint", "ours", "floor", "of floor", "ours/health", "floor/health");
    let (oh, fh) = (mean(&ours[0].1, |r| r.rps), mean(&floor[0].1, |r| r.rps));
    for ((name, o), (_, f)) in ours.iter().zip(floor) {
        let (o, f) = (mean(o, |r| r.rps), mean(f, |r| r.rps));
        println!(
            "{name:<34} {o:>9.0} {f:>9.0} {:>8.0}% {:>11.0}% {:>11.0}%",
            100.0 * o / f.max(0.001),
            100.0 * o / oh.max(0.001),
            100.0 * f / fh.max(0.001)
        );
    }
}

/// Each endpoint against the plain JavaScript worker of the same flow.
fn print_js(ours: &[(String, Vec<Stats>)], js: &[(String, Vec<Stats>)]) {
    println!("\nagainst a plain JavaScript worker of the same flow (bench/js-flow.mjs, measured in the same run)");
    println!("{:<34} {:>9} {:>9} {:>9} {:>10} {:>10}", "endpoint", "ours", "JS", "ours/JS", "our p99", "JS p99");
    for (name, o) in ours {
        let (orps, op99) = (mean(o, |r| r.rps), mean(o, |r| r.p99_ms));
        match js.iter().find(|(n, _)| n == name) {
            Some((_, j)) => {
                let (jrps, jp99) = (mean(j, |r| r.rps), mean(j, |r| r.p99_ms));
                println!("{name:<34} {orps:>9.0} {jrps:>9.0} {:>8.2}× {op99:>8.1}ms {jp99:>8.1}ms", orps / jrps.max(0.001));
            }
            None => println!("{name:<34} {orps:>9.0} {:>9} {:>9} {op99:>8.1}ms {:>10}", "n/a", "n/a", "n/a"),
        }
    }
}

/// The three workers whose `/health` is compared side by side.
const HEALTH_WORKERS: [(&str, &str); 3] =
    [("ours", "build/index.js"), ("minimal workers-rs", "tools/minimal-worker/build/index.js"), ("plain JavaScript", "bench/js-flow.mjs")];

/// `/health` of the three workers, all running, probed in turn: five rounds
/// (three with `--quick`) of one measurement each.
async fn health_side_by_side(root: &Path, state: &Path, fal_url: &str, http: &reqwest::Client, s: &Settings) -> Vec<(String, Vec<Stats>)> {
    let mut servers = Vec::new();
    for (i, (_, script)) in HEALTH_WORKERS.iter().enumerate() {
        let dir = sibling(state, &format!("health-{i}"));
        fresh_state(root, &dir);
        servers.push((start_script(root, &dir, fal_url, script).await.0, dir));
    }
    let mut results: Vec<(String, Vec<Stats>)> = HEALTH_WORKERS.iter().map(|(name, _)| (name.to_string(), Vec::new())).collect();
    for ((_, base), _) in &servers {
        load::run(http, base, Arc::new(|_| Req::get("/health")), CONNECTIONS, Duration::from_secs(2)).await;
    }
    let rounds = if s.repetitions > 1 { 5 } else { 3 };
    for _ in 0..rounds {
        for (i, ((_, base), _)) in servers.iter().enumerate() {
            let stats = load::run(http, base, Arc::new(|_| Req::get("/health")), CONNECTIONS, Duration::from_secs(s.seconds.min(5))).await;
            results[i].1.push(stats);
        }
    }
    for ((server, dir), (name, reps)) in servers.into_iter().zip(&results) {
        drop(server);
        let _ = std::fs::remove_dir_all(dir);
        println!("   {name:<34} {:>8.0} req/s  p50 {:>6.2} ms", mean(reps, |r| r.rps), mean(reps, |r| r.p50_ms));
    }
    results
}

fn print_health(health: &[(String, Vec<Stats>)]) {
    println!("\n/health side by side ({CONNECTIONS} connections, the three workers probed in turn; mean of the rounds)");
    println!("{:<22} {:>9} {:>8} {:>8} {:>16}", "worker", "req/s", "p50 ms", "p99 ms", "of plain JS");
    let js = health.last().map_or(0.0, |(_, reps)| mean(reps, |r| r.rps));
    for (name, reps) in health {
        let rps = mean(reps, |r| r.rps);
        println!("{name:<22} {rps:>9.0} {:>8.2} {:>8.1} {:>15.0}%", mean(reps, |r| r.p50_ms), mean(reps, |r| r.p99_ms), 100.0 * rps / js.max(0.001));
    }
}

/// The targets that one run of the small data set can decide.
fn print_targets(ours: &[(String, Vec<Stats>)], floor: &[(String, Vec<Stats>)], js: &[(String, Vec<Stats>)], health: &[(String, Vec<Stats>)]) {
    let find = |set: &[(String, Vec<Stats>)], name: &str| set.iter().find(|(n, _)| n == name).map(|(_, reps)| (mean(reps, |r| r.rps), mean(reps, |r| r.p99_ms)));
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!("\ntargets (small data set, this run)");
    if let (Some((o, _)), Some((m, _)), Some((j, _))) = (find(health, HEALTH_WORKERS[0].0), find(health, HEALTH_WORKERS[1].0), find(health, HEALTH_WORKERS[2].0)) {
        let share = o / j.max(0.001);
        println!(
            "  {} /health ≥ 85% of the JS worker's /health (side by side): {:.0}% (the smallest workers-rs worker: {:.0}%)",
            verdict(share >= 0.85),
            100.0 * share,
            100.0 * m / j.max(0.001)
        );
    }
    for name in &ENDPOINTS[1..] {
        if let (Some((o, _)), Some((f, _))) = (find(ours, name), find(floor, name)) {
            let share = o / f.max(0.001);
            println!("  {} {name} ≥ 80% of the floor: {:.0}%", verdict(share >= 0.80), 100.0 * share);
        }
    }
    for name in &ENDPOINTS[1..3] {
        if let (Some((o, op99)), Some((j, jp99))) = (find(ours, name), find(js, name)) {
            let ratio = o / j.max(0.001);
            println!(
                "  {} {name} ≥ 1.0× the JS worker's req/s, p99 no worse: {ratio:.2}×, p99 {op99:.1} ms vs {jp99:.1} ms",
                verdict(ratio >= 1.0 && op99 <= jp99)
            );
        }
    }
}

fn print_growth(small: &[(String, Vec<Stats>)], large: &[(String, Vec<Stats>)]) {
    println!("\np50 growth from the small to the large data set");
    for ((name, a), (_, b)) in small.iter().zip(large) {
        let (pa, pb) = (mean(a, |r| r.p50_ms), mean(b, |r| r.p50_ms));
        println!("  {name:<34} {pa:>7.1} → {pb:>7.1} ms  ({:+.0}%)", 100.0 * (pb - pa) / pa.max(0.001));
    }
}

fn print_dashboard(small: &Value, large: &Value) {
    println!("\ndashboard calls, 20 each in a row (p50 / max ms): small | large");
    for (name, s) in small.as_object().unwrap() {
        let l = &large[name];
        println!(
            "  {name:<34} {:>7.1} / {:>7.1} | {:>7.1} / {:>7.1}",
            s["p50_ms"].as_f64().unwrap(), s["max_ms"].as_f64().unwrap(), l["p50_ms"].as_f64().unwrap(), l["max_ms"].as_f64().unwrap()
        );
    }
}
