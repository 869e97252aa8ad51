//! `bench latency [--seconds N]`: the time our worker adds over FAL's.
//!
//! The FAL emulator answers model calls after 2 s, as inference would; our
//! built worker runs under Miniflare on the small data set. 16 connections
//! drive `POST /api/images/generate`, then `POST /api/jobs`, for N seconds
//! each (default 10). For every successful response the client's measured
//! time minus the `fal` phase of its `Server-Timing` header is what we
//! added; its p50 and p99 are held against the targets.
//!
//! What `fal` covers differs: on a generation it is the model call itself
//! (2 s here); on a job it is only the submission to FAL's queue, which the
//! emulator answers at once (the 2 s run after it, then the webhook), so a
//! job's figure is nearly all of its response time. The webhooks of the
//! jobs created arrive during the measurement, as they would in production.

use super::load::{self, MakeReq, Req, Stats};
use super::{fresh_state, now_ms, seed, sibling, start_emulator_with_latency, start_worker, state_dir, try_on, CONNECTIONS};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const FAL_LATENCY_MS: u64 = 2_000;
const TARGET_P50_MS: f64 = 10.0;
const TARGET_P99_MS: f64 = 50.0;
/// Clients taking turns: each one's limiter is loaded before measuring.
const CLIENTS: usize = 64;

pub async fn run(root: &Path, seconds: u64) {
    let state = sibling(&state_dir(root), "latency");
    fresh_state(root, &state);
    let (_emulator, fal_url) = start_emulator_with_latency(root, FAL_LATENCY_MS).await;
    let small = seed::seed(&state, 1_000, 0, 400, now_ms()).expect("seeding");
    let (server, _) = start_worker(root, &state, &fal_url).await;
    let base = server.1.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let keys: Arc<Vec<String>> = Arc::new(small.clients.iter().take(CLIENTS).map(|(_, key)| key.clone()).collect());
    for key in keys.iter() {
        let r = http.get(format!("{base}/api/usage")).header("x-api-key", key).send().await.expect("the worker answers");
        assert!(r.status().is_success(), "warming a limiter: {}", r.status());
    }
    let body = try_on(&fal_url);
    println!("\nFAL answering after {FAL_LATENCY_MS} ms; {CONNECTIONS} connections, {seconds} s per endpoint after a 3 s warm-up");
    let mut results: Vec<(&str, Stats)> = Vec::new();
    for path in ["/api/images/generate", "/api/jobs"] {
        let make: MakeReq = {
            let (keys, body) = (keys.clone(), body.clone());
            Arc::new(move |i| Req::post_json(path, body.clone()).header("x-api-key", &keys[i % keys.len()]))
        };
        load::run(&http, &base, make.clone(), CONNECTIONS, Duration::from_secs(3)).await;
        let stats = load::run(&http, &base, make, CONNECTIONS, Duration::from_secs(seconds)).await;
        results.push((path, stats));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&state);

    println!("\ntime added over FAL (client-measured response time − Server-Timing `fal`), per successful response");
    println!("{:<26} {:>9} {:>8} {:>11} {:>9} {:>9} {:>10} {:>10}", "endpoint", "responses", "non-2xx", "fal (mean)", "p50 ms", "p99 ms", "total p50", "total p99");
    for (path, s) in &results {
        let fal = s.server_timing_ms.get("fal").copied().unwrap_or(f64::NAN);
        match &s.over_fal {
            Some(o) => println!(
                "POST {path:<21} {:>9} {:>8} {fal:>9.1}ms {:>9.1} {:>9.1} {:>10.1} {:>10.1}",
                o.responses, s.non_2xx, o.p50_ms, o.p99_ms, s.p50_ms, s.p99_ms
            ),
            None => println!("POST {path:<21} no successful response carried a `fal` Server-Timing phase ({} requests, {} non-2xx)", s.requests, s.non_2xx),
        }
    }
    println!("\ntargets");
    for (path, s) in &results {
        let Some(o) = &s.over_fal else {
            println!("  FAIL POST {path}: not measured (no `fal` phase)");
            continue;
        };
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        println!("  {} POST {path} p50 over FAL ≤ {TARGET_P50_MS} ms: {:.1} ms", verdict(o.p50_ms <= TARGET_P50_MS), o.p50_ms);
        println!("  {} POST {path} p99 over FAL ≤ {TARGET_P99_MS} ms: {:.1} ms", verdict(o.p99_ms <= TARGET_P99_MS), o.p99_ms);
    }
    println!("(on a job, `fal` is only the queue submission, answered at once: its figure is nearly the whole response)");

    let report = json!({
        "at": now_ms(), "fal_latency_ms": FAL_LATENCY_MS, "connections": CONNECTIONS, "seconds": seconds,
        "endpoints": results.iter().map(|(p, s)| (format!("POST {p}"), json!(s))).collect::<serde_json::Map<_, _>>(),
    });
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("latency.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nresults: {}", dir.join("latency.json").display());
}
