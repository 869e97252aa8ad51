//! A small closed-loop load generator: N connections, each sending its next
//! request as soon as the previous answered, for a fixed time.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Self { method: reqwest::Method::GET, path: path.into(), headers: Vec::new(), body: None }
    }

    pub fn post_json(path: impl Into<String>, body: String) -> Self {
        Self { method: reqwest::Method::POST, path: path.into(), headers: vec![("content-type".into(), "application/json".into())], body: Some(body) }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub requests: usize,
    pub non_2xx: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Mean of each `Server-Timing` phase over the successful responses.
    pub server_timing_ms: BTreeMap<String, f64>,
    /// Time added over FAL: each successful response's time as the client
    /// measured it minus its `fal` phase, over the responses that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_fal: Option<OverFal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverFal {
    pub responses: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub type MakeReq = Arc<dyn Fn(usize) -> Req + Send + Sync>;

pub async fn run(http: &reqwest::Client, base: &str, make: MakeReq, connections: usize, duration: Duration) -> Stats {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, base, make, counter) = (http.clone(), base.to_string(), make.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut non_2xx = 0;
            let mut timing: BTreeMap<String, (f64, usize)> = BTreeMap::new();
            let mut over_fal = Vec::new();
            while Instant::now() < deadline {
                let req = make(counter.fetch_add(1, Ordering::Relaxed));
                let mut builder = http.request(req.method, format!("{base}{}", req.path));
                for (k, v) in &req.headers {
                    builder = builder.header(k, v);
                }
                if let Some(body) = req.body {
                    builder = builder.body(body);
                }
                let sent = Instant::now();
                let mut fal_ms = None;
                match builder.send().await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        if !ok {
                            non_2xx += 1;
                        }
                        if let (true, Some(st)) = (ok, resp.headers().get("server-timing").and_then(|v| v.to_str().ok())) {
                            for (name, ms) in parse_server_timing(st) {
                                if name == "fal" {
                                    fal_ms = Some(ms);
                                }
                                let e = timing.entry(name).or_insert((0.0, 0));
                                e.0 += ms;
                                e.1 += 1;
                            }
                        }
                        let _ = resp.bytes().await;
                    }
                    Err(_) => non_2xx += 1,
                }
                let latency = sent.elapsed().as_secs_f64() * 1000.0;
                latencies.push(latency);
                if let Some(fal) = fal_ms {
                    over_fal.push(latency - fal);
                }
            }
            (latencies, non_2xx, timing, over_fal)
        }));
    }
    let mut all = Vec::new();
    let mut non_2xx = 0;
    let mut timing: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut over_fal = Vec::new();
    for t in tasks {
        let (l, n, tm, of) = t.await.expect("load task");
        all.extend(l);
        over_fal.extend(of);
        non_2xx += n;
        for (k, (sum, count)) in tm {
            let e = timing.entry(k).or_insert((0.0, 0));
            e.0 += sum;
            e.1 += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    over_fal.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        requests: all.len(),
        non_2xx,
        rps: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p95_ms: percentile(&all, 0.95),
        p99_ms: percentile(&all, 0.99),
        server_timing_ms: timing.into_iter().map(|(k, (sum, n))| (k, sum / n.max(1) as f64)).collect(),
        over_fal: (!over_fal.is_empty()).then(|| OverFal { responses: over_fal.len(), p50_ms: percentile(&over_fal, 0.50), p99_ms: percentile(&over_fal, 0.99) }),
    }
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn parse_server_timing(header: &str) -> Vec<(String, f64)> {
    header
        .split(',')
        .filter_map(|part| {
            let mut fields = part.trim().split(';');
            let name = fields.next()?.trim().to_string();
            let dur = fields.find_map(|f| f.trim().strip_prefix("dur="))?.parse().ok()?;
            Some((name, dur))
        })
        .collect()
}
