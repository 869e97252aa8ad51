//! `bench memory`: how much wasm memory the largest requests the caps admit
//! take. An isolate has 128 MB for everything it runs (wasm memory, the JS
//! heap, every request in flight), and wasm memory never shrinks, so the
//! figure that matters is the instance's linear memory after the requests:
//! its high-water mark. Development builds report it on every answer
//! (`x-wasm-memory-bytes`); each scenario runs on a fresh worker process, so
//! each starts from the baseline. FAL answers after 2 s, as inference would,
//! so that concurrent requests are in flight together.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;
use tryon_edge::config::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DATA_URI_BYTES};
use tryon_edge::domain::generation::MAX_GARMENTS_NANO_BANANA;

const MIB: f64 = 1024.0 * 1024.0;
const FAL_LATENCY_MS: u64 = 2_000;
const HEADER: &str = "x-wasm-memory-bytes";

pub async fn run(root: &Path) {
    let (_emulator, fal_url) = super::start_emulator_with_latency(root, FAL_LATENCY_MS).await;
    let body = maximal_body();
    println!(
        "caps: body {:.1} MiB, one data URI {:.1} MiB decoded; the largest request: {} images as data URIs, {:.2} MiB of JSON",
        DEFAULT_MAX_BODY_BYTES as f64 / MIB,
        DEFAULT_MAX_DATA_URI_BYTES as f64 / MIB,
        body.1,
        body.0.len() as f64 / MIB
    );
    let mut rows = Vec::new();
    for (label, endpoint, concurrent) in [
        ("idle (after one GET /health)", None, 0),
        ("1 synchronous try-on, largest body", Some("/api/images/generate"), 1),
        ("1 job, largest body", Some("/api/jobs"), 1),
        ("4 synchronous try-ons at once, largest bodies", Some("/api/images/generate"), 4),
        ("8 synchronous try-ons at once, largest bodies", Some("/api/images/generate"), 8),
    ] {
        let bytes = scenario(root, &fal_url, endpoint, concurrent, &body.0).await;
        println!("{label:<48} {:>7.1} MiB", bytes as f64 / MIB);
        rows.push(json!({ "scenario": label, "concurrent": concurrent, "wasm_memory_bytes": bytes }));
    }
    let report = json!({
        "max_body_bytes": DEFAULT_MAX_BODY_BYTES, "max_data_uri_bytes": DEFAULT_MAX_DATA_URI_BYTES,
        "largest_body_bytes": body.0.len(), "images": body.1, "fal_latency_ms": FAL_LATENCY_MS, "scenarios": rows,
    });
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memory.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("results: {}", dir.join("memory.json").display());
}

/// A fresh worker; `concurrent` requests of `body` at once to `endpoint`;
/// then the instance's wasm memory.
async fn scenario(root: &Path, fal_url: &str, endpoint: Option<&str>, concurrent: usize, body: &str) -> u64 {
    let state = super::state_dir(root).with_file_name("tryon-memory-state");
    super::fresh_state(root, &state);
    let (server, _) = super::start_worker(root, &state, fal_url).await;
    let base = server.1.clone();
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build().unwrap();
    let cookie = super::login(&http, &base).await;
    let created: Value = http
        .post(format!("{base}/admin/clients"))
        .header("cookie", &cookie)
        .json(&json!({ "name": "Memory", "rate_limit_per_minute": 1000, "max_concurrent": 100 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().expect("a new client's key").to_string();
    if let Some(endpoint) = endpoint {
        let started = Instant::now();
        let sends = (0..concurrent).map(|_| {
            http.post(format!("{base}{endpoint}")).header("x-api-key", &key).header("content-type", "application/json").body(body.to_string()).send()
        });
        for reply in futures_util::future::join_all(sends).await {
            let reply = reply.expect("the worker answers");
            let status = reply.status().as_u16();
            assert!(status == 200 || status == 202, "{endpoint} answered {status}: {}", reply.text().await.unwrap_or_default());
        }
        assert!(started.elapsed().as_millis() as u64 >= FAL_LATENCY_MS || endpoint == "/api/jobs", "FAL's latency was not in the path");
    }
    let reply = http.get(format!("{base}/health")).send().await.unwrap();
    let bytes = reply.headers().get(HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    drop(server);
    bytes.expect("the worker reports its wasm memory (ENVIRONMENT=development)")
}

/// The largest body the caps admit: nano-banana-pro with as many data-URI
/// images (the person and garments) as fit, each at most the data-URI cap.
/// Returns the JSON and how many images it holds.
fn maximal_body() -> (String, usize) {
    use base64::Engine;
    const PREFIX: &str = "data:image/png;base64,";
    const ROOM: usize = 512; // the rest of the JSON
    let encoded = |decoded: usize| PREFIX.len() + decoded.div_ceil(3) * 4 + 3; // quotes and comma
    let max_images = 1 + MAX_GARMENTS_NANO_BANANA;
    let images = (DEFAULT_MAX_BODY_BYTES - ROOM).div_ceil(encoded(DEFAULT_MAX_DATA_URI_BYTES)).clamp(2, max_images);
    // Each image as large as the caps allow: the data-URI cap, or an equal share of the body.
    let mut decoded = DEFAULT_MAX_DATA_URI_BYTES;
    while images * encoded(decoded) > DEFAULT_MAX_BODY_BYTES - ROOM {
        decoded -= 3 * 1024;
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(decoded, 0);
    let uri = format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(&png));
    let body = json!({
        "model": "nano-banana-pro",
        "person_image_url": uri,
        "garment_image_urls": vec![uri.clone(); images - 1],
    })
    .to_string();
    assert!(body.len() <= DEFAULT_MAX_BODY_BYTES, "{} bytes", body.len());
    (body, images)
}
