//! `bench costs [--requests N] [--floor]`: what one request costs on Cloudflare.
//!
//! Runs our built worker wrapped by `bench/count.mjs` (which counts every
//! billable operation at the bindings, including work after the response,
//! FAL's webhooks and the queue consumer) against the FAL emulator, on the
//! small data set (1,000 seeded clients). For each endpoint it sends N
//! requests one after another as one client whose limiter is already loaded
//! (the steady state: a client's first request also loads its limiter from
//! D1), waits until the counters stop moving, and prints the operations per
//! request, then prices them at Cloudflare's paid-plan prices next to FAL's
//! price per image. With `--floor`, the platform floor (bench/floor.mjs,
//! wrapped by bench/count-floor.mjs) is counted the same way on its own
//! state, and its counts are printed next to ours: it is meant to make the
//! same binding calls.

use super::{fresh_state, now_ms, seed, sibling, start_emulator, start_script, state_dir, try_on};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The counters `bench/counting.mjs` keeps, in the order they are printed.
const COUNTERS: [&str; 23] = [
    "worker_requests",
    "queue_batches",
    "do_requests",
    "do_alarms",
    "do_rows_read",
    "do_rows_written",
    "do_set_alarms",
    "do_wall_ms",
    "d1_queries",
    "d1_rows_read",
    "d1_rows_written",
    "kv_reads",
    "kv_writes",
    "kv_deletes",
    "kv_lists",
    "r2_class_a",
    "r2_class_b",
    "r2_free",
    "queue_sent",
    "queue_delivered",
    "queue_acked",
    "queue_retried",
    "fetches",
];

/// Cloudflare's paid-plan prices in USD per operation, beyond the monthly
/// allowances (which are left out: at scale they round to nothing). Each
/// figure as stored in /work/notes/research.md §7:
mod price {
    /// "+$0.30 per additional million" requests —
    /// https://developers.cloudflare.com/workers/platform/pricing/
    /// (CPU time, +$0.02 per million CPU ms, is not counted at the bindings.)
    pub const WORKER_REQUEST: f64 = 0.30e-6;
    /// Durable Objects requests (HTTP, RPC, alarms) "+ $0.15/million" —
    /// https://developers.cloudflare.com/durable-objects/platform/pricing/
    pub const DO_REQUEST: f64 = 0.15e-6;
    /// Durable Objects duration "+ $12.50/million GB-s", billed at 128 MB
    /// while the object is active — same page.
    pub const DO_GB_S: f64 = 12.50e-6;
    pub const DO_GB: f64 = 0.128;
    /// SQLite-backed storage: rows read "+ $0.001 / million rows", rows
    /// written "+ $1.00 / million rows", each `setAlarm` one row written —
    /// https://developers.cloudflare.com/durable-objects/platform/pricing/ (storage_api_pricing).
    pub const DO_ROW_READ: f64 = 0.001e-6;
    pub const DO_ROW_WRITTEN: f64 = 1.00e-6;
    /// D1: rows read + $0.001/M, rows written + $1.00/M —
    /// https://developers.cloudflare.com/d1/platform/pricing/
    pub const D1_ROW_READ: f64 = 0.001e-6;
    pub const D1_ROW_WRITTEN: f64 = 1.00e-6;
    /// KV: reads + $0.50/M; writes, deletes, lists + $5.00/M each —
    /// https://developers.cloudflare.com/kv/platform/pricing/
    pub const KV_READ: f64 = 0.50e-6;
    pub const KV_WRITE: f64 = 5.00e-6;
    /// R2 Standard: Class A $4.50/M, Class B $0.36/M (deletes free) —
    /// https://developers.cloudflare.com/r2/pricing/
    pub const R2_CLASS_A: f64 = 4.50e-6;
    pub const R2_CLASS_B: f64 = 0.36e-6;
    /// Queues: "+$0.40/million operations", one operation per 64 KB
    /// written, read or deleted: a message is three, each retry one more
    /// read — https://developers.cloudflare.com/queues/platform/pricing/ (queues_pricing).
    pub const QUEUE_OP: f64 = 0.40e-6;
}

/// FAL's price per image for our two models (research.md §7).
const FAL_PRICES: [(&str, &str, Option<f64>, &str); 2] = [
    (
        "nano-banana-pro",
        "fal-ai/nano-banana-pro/edit",
        Some(0.15),
        "1K/2K image; 4K is 2x. Transcribed from fal's model page in several repositories, not read from fal.ai here",
    ),
    (
        "fal-virtual-try-on",
        "fal-ai/image-apps-v2/virtual-try-on",
        None,
        "price not found; ask GET https://api.fal.ai/v1/models/pricing?endpoint_id=fal-ai/image-apps-v2/virtual-try-on",
    ),
];

const ORIGIN: &str = "https://shop.example";

struct Endpoint {
    name: &'static str,
    /// The per-request counts.
    per_request: Map<String, Value>,
}

pub async fn run(root: &Path, requests: usize, floor: bool) {
    let (_emulator, fal_url) = start_emulator(root).await;
    let rows = measure_script(root, &fal_url, "bench/count.mjs", "costs", requests).await;
    print_counts(&rows, requests);
    print_prices(&rows);
    let mut report = json!({
        "at": now_ms(),
        "requests_per_endpoint": requests,
        "per_request": per_request(&rows),
    });
    if floor {
        let floor_rows = measure_script(root, &fal_url, "bench/count-floor.mjs", "costs-floor", requests).await;
        print_against_floor(&rows, &floor_rows, requests);
        report["floor_per_request"] = per_request(&floor_rows);
    }
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("costs.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nresults: {}", dir.join("costs.json").display());
}

fn per_request(rows: &[Endpoint]) -> Value {
    Value::Object(rows.iter().map(|r| (r.name.to_string(), Value::Object(r.per_request.clone()))).collect())
}

/// Every endpoint's counts for `script` (a counting wrapper) on a fresh
/// state with the small data set.
async fn measure_script(root: &Path, fal_url: &str, script: &str, suffix: &str, requests: usize) -> Vec<Endpoint> {
    let state = sibling(&state_dir(root), suffix);
    fresh_state(root, &state);
    let small = seed::seed(&state, 1_000, 0, 400, now_ms()).expect("seeding");
    let (client, key) = small.clients[0].clone();
    let publishable = seed::widget_key(&state, &client, ORIGIN).expect("a publishable key");
    println!("counting {script}");
    let (server, _) = start_script(root, &state, fal_url, script).await;
    let base = server.1.clone();
    let http = reqwest::Client::new();
    let body = try_on(fal_url);

    // The client's limiter loads once from D1; that is not a request's cost.
    send(&http, &base, Call::get("/api/usage", &key)).await;
    settle(&http, &base, 0).await;
    counts(&http, &base, true).await;

    let mut rows = Vec::new();
    rows.push(measure(&http, &base, "GET /health", requests, 0, |_| Call::public("/health")).await);
    rows.push(measure(&http, &base, "POST /api/images/generate", requests, 0, |_| Call::post("/api/images/generate", &key, &body)).await);
    // A job: its creation, then FAL's webhook that ends it (one more worker request each).
    let mut jobs = Vec::new();
    let created = measure_with(&http, &base, "POST /api/jobs + FAL webhook", requests, requests, |_| Call::post("/api/jobs", &key, &body), Some(&mut jobs)).await;
    rows.push(created);
    rows.push(
        measure(&http, &base, "GET /api/jobs/{id} (finished)", requests, 0, |i| Call::get(&format!("/api/jobs/{}", jobs[i % jobs.len().max(1)]), &key)).await,
    );
    rows.push(measure(&http, &base, "GET /api/generations?limit=20", requests, 0, |_| Call::get("/api/generations?limit=20", &key)).await);
    rows.push(
        measure(&http, &base, "widget: POST /api/images/generate", requests, 0, |i| {
            // A shopper per request: the widget's per-shopper limits stay out of the way.
            let shopper = format!("anon_benchshopper{i:010}aaaaa");
            let mut call = Call::post("/api/images/generate", &publishable, &body);
            call.headers.push(("origin".into(), ORIGIN.into()));
            call.headers.push(("x-tryon-shopper".into(), shopper));
            call
        })
        .await,
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&state);
    rows
}


struct Call {
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Call {
    fn public(path: &str) -> Self {
        Self { method: reqwest::Method::GET, path: path.into(), headers: Vec::new(), body: None }
    }

    fn get(path: &str, key: &str) -> Self {
        Self { method: reqwest::Method::GET, path: path.into(), headers: vec![("x-api-key".into(), key.into())], body: None }
    }

    fn post(path: &str, key: &str, body: &str) -> Self {
        Self {
            method: reqwest::Method::POST,
            path: path.into(),
            headers: vec![("x-api-key".into(), key.into()), ("content-type".into(), "application/json".into())],
            body: Some(body.into()),
        }
    }
}

/// Sends `call`; panics unless it succeeded (a refusal would be priced as a try-on).
async fn send(http: &reqwest::Client, base: &str, call: Call) -> Value {
    let mut builder = http.request(call.method, format!("{base}{}", call.path));
    for (k, v) in &call.headers {
        builder = builder.header(k, v);
    }
    if let Some(body) = call.body {
        builder = builder.body(body);
    }
    let response = builder.send().await.expect("the worker answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{}: {status} {text}", call.path);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn counts(http: &reqwest::Client, base: &str, reset: bool) -> Map<String, Value> {
    let url = if reset { format!("{base}/__counts?reset") } else { format!("{base}/__counts") };
    match http.get(url).send().await.expect("counts").json::<Value>().await.expect("counts as JSON") {
        Value::Object(map) => map,
        other => panic!("counts: {other}"),
    }
}

/// Waits until at least `worker_requests` requests were counted and the
/// counters then stay the same for a second (work after the response, the
/// limiter's settle, result copies, webhooks). Gives up after 30 s.
async fn settle(http: &reqwest::Client, base: &str, worker_requests: u64) -> Map<String, Value> {
    let started = Instant::now();
    let mut last = counts(http, base, false).await;
    let mut still_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = counts(http, base, false).await;
        let enough = now["worker_requests"].as_u64().unwrap_or(0) >= worker_requests;
        if now != last {
            still_since = Instant::now();
            last = now;
        } else if enough && still_since.elapsed() >= Duration::from_secs(1) {
            return last;
        }
        if started.elapsed() > Duration::from_secs(30) {
            println!("   (counters still moving or short of {worker_requests} requests after 30 s; taking them as they are)");
            return last;
        }
    }
}

async fn measure(http: &reqwest::Client, base: &str, name: &'static str, n: usize, extra: usize, make: impl Fn(usize) -> Call) -> Endpoint {
    measure_with(http, base, name, n, extra, make, None).await
}

/// Sends `n` requests one after another, waits for their work and `extra`
/// more worker requests (webhooks) to be counted, and divides by `n`.
/// Ids the answers carry are collected into `ids` when given.
async fn measure_with(
    http: &reqwest::Client,
    base: &str,
    name: &'static str,
    n: usize,
    extra: usize,
    make: impl Fn(usize) -> Call,
    mut ids: Option<&mut Vec<String>>,
) -> Endpoint {
    counts(http, base, true).await;
    for i in 0..n {
        let answer = send(http, base, make(i)).await;
        if let (Some(ids), Some(id)) = (ids.as_deref_mut(), answer["id"].as_str()) {
            ids.push(id.to_string());
        }
    }
    let totals = settle(http, base, (n + extra) as u64).await;
    counts(http, base, true).await;
    let per_request = COUNTERS.iter().map(|c| (c.to_string(), json!(totals.get(*c).and_then(Value::as_f64).unwrap_or(0.0) / n as f64))).collect();
    println!("   {name}: {n} requests counted");
    Endpoint { name, per_request }
}

fn get(row: &Endpoint, counter: &str) -> f64 {
    row.per_request.get(counter).and_then(Value::as_f64).unwrap_or(0.0)
}

fn print_counts(rows: &[Endpoint], n: usize) {
    println!("\nbillable operations per request (mean of {n} sequential requests of one warmed client; work after the response and webhooks included)");
    print!("{:<18}", "counter");
    for (i, _) in rows.iter().enumerate() {
        print!(" {:>9}", format!("[{}]", i + 1));
    }
    println!();
    for counter in COUNTERS {
        if rows.iter().all(|r| get(r, counter) == 0.0) {
            continue;
        }
        print!("{counter:<18}");
        for r in rows {
            print!(" {:>9.2}", get(r, counter));
        }
        println!();
    }
    let silent: Vec<&str> = COUNTERS.iter().copied().filter(|c| rows.iter().all(|r| get(r, c) == 0.0)).collect();
    println!("all zero: {}", silent.join(", "));
    for (i, r) in rows.iter().enumerate() {
        println!("  [{}] {}", i + 1, r.name);
    }
}

/// Each component's price for one request of `row`, in USD.
fn priced(row: &Endpoint) -> Vec<(&'static str, f64)> {
    let c = |name| get(row, name);
    // A message is written, read and deleted (one 64 KB operation each; ours are far smaller); a retry reads it again.
    let queue_ops = 3.0 * c("queue_sent") + c("queue_retried");
    vec![
        ("workers", (c("worker_requests") + c("queue_batches")) * price::WORKER_REQUEST),
        ("DO req", (c("do_requests") + c("do_alarms")) * price::DO_REQUEST),
        ("DO GB-s", c("do_wall_ms") / 1000.0 * price::DO_GB * price::DO_GB_S),
        ("DO rows", c("do_rows_read") * price::DO_ROW_READ + (c("do_rows_written") + c("do_set_alarms")) * price::DO_ROW_WRITTEN),
        ("D1 rows", c("d1_rows_read") * price::D1_ROW_READ + c("d1_rows_written") * price::D1_ROW_WRITTEN),
        ("KV", c("kv_reads") * price::KV_READ + (c("kv_writes") + c("kv_deletes") + c("kv_lists")) * price::KV_WRITE),
        ("R2", c("r2_class_a") * price::R2_CLASS_A + c("r2_class_b") * price::R2_CLASS_B),
        ("Queues", queue_ops * price::QUEUE_OP),
    ]
}

fn print_prices(rows: &[Endpoint]) {
    println!("\nUSD per million requests at Cloudflare's paid-plan prices (beyond the monthly allowances; Workers CPU time not included)");
    let header = priced(&rows[0]);
    print!("{:<36}", "endpoint");
    for (name, _) in &header {
        print!(" {name:>8}");
    }
    println!(" {:>9} {:>11}", "total", "do_wall_ms");
    let mut totals = Vec::new();
    for r in rows {
        let parts = priced(r);
        let total: f64 = parts.iter().map(|(_, usd)| usd).sum();
        print!("{:<36}", r.name);
        for (_, usd) in &parts {
            print!(" {:>8.2}", usd * 1e6);
        }
        println!(" {:>9.2} {:>11.2}", total * 1e6, get(r, "do_wall_ms"));
        totals.push((r.name, total));
    }
    let total_of = |name: &str| totals.iter().find(|(n, _)| *n == name).map_or(0.0, |(_, t)| *t);
    let sync = total_of("POST /api/images/generate");
    let job = total_of("POST /api/jobs + FAL webhook") + total_of("GET /api/jobs/{id} (finished)");
    let widget = total_of("widget: POST /api/images/generate");
    println!("\nper million try-ons (Cloudflare) next to FAL's price per image (× 1,000,000)");
    println!("  sync try-on (POST /api/images/generate)              ${:>10.2}", sync * 1e6);
    println!("  job try-on (create + FAL webhook + one finished read) ${:>10.2}", job * 1e6);
    println!("  widget try-on (publishable key, sync)                 ${:>10.2}", widget * 1e6);
    for (model, endpoint, per_image, note) in FAL_PRICES {
        match per_image {
            Some(usd) => println!("  FAL {model} ({endpoint}): ${usd:.3} per image = ${:.0} per million ({note})", usd * 1e6),
            None => println!("  FAL {model} ({endpoint}): {note}"),
        }
    }
    println!("do_wall_ms: the limiter round trip as its caller waits for it (an upper bound on the object's billed active time: requests to one object overlap)");
}

/// Each counter that is not zero everywhere: ours / the floor's, per endpoint.
fn print_against_floor(ours: &[Endpoint], floor: &[Endpoint], n: usize) {
    println!("\nours / floor, per request (mean of {n} each; the floor is bench/floor.mjs, wrapped by bench/count-floor.mjs)");
    print!("{:<18}", "counter");
    for (i, _) in ours.iter().enumerate() {
        print!(" {:>13}", format!("[{}]", i + 1));
    }
    println!();
    for counter in COUNTERS {
        if ours.iter().chain(floor).all(|r| get(r, counter) == 0.0) {
            continue;
        }
        print!("{counter:<18}");
        for (o, f) in ours.iter().zip(floor) {
            print!(" {:>13}", format!("{:.2}/{:.2}", get(o, counter), get(f, counter)));
        }
        println!();
    }
    for (i, r) in ours.iter().enumerate() {
        println!("  [{}] {}", i + 1, r.name);
    }
}
