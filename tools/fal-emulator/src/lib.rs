//! A local stand-in for the parts of FAL's HTTP API the worker uses. For
//! development and tests only: it is never configured in production.
//!
//! - `POST /{model_id}`: the synchronous API (`Authorization: Key …`).
//! - `/queue/…`: the queue API with signed webhooks and a status stream (see
//!   `queue`), and `GET /.well-known/jwks.json`, the key that verifies them.
//! - `GET /files/{name}`: the PNGs it produced (see `files`); `GET /samples/…`:
//!   inputs to try (see `samples`).
//! - `POST /_emulator/faults` (a [`faults::Fault`]), `DELETE /_emulator/faults`,
//!   `GET /_emulator/requests?match=…`: program faults and inspect what it received.

pub mod faults;
mod files;
pub mod images;
mod queue;
mod samples;
mod severed;
mod spoiled_results;
mod status_stream;
mod sync;
pub mod webhook;

use axum::extract::{Query, State};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use faults::{Fault, Faults};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The key callers must send as `Authorization: Key <api_key>`.
    pub api_key: String,
    /// Added to every model call, to mimic inference time.
    pub latency_ms: u64,
    /// Compose the inputs into a new PNG (true), or answer with a stock image
    /// so a benchmark measures the worker, not the emulator's image code.
    pub compose: bool,
    /// Answer with each produced image inline, as a `data:image/png` URI (as
    /// FAL does in `sync_mode`), instead of a `/files/…` URL: for a worker
    /// that, like a deployed one, refuses loopback result URLs.
    pub data_uri_results: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self { api_key: "emulator-key".into(), latency_ms: 0, compose: true, data_uri_results: false }
    }
}

/// What the emulator received, for tests to assert on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub authorized: bool,
    pub body: Value,
    /// The `X-Fal-Object-Lifecycle-Preference` header, which tells FAL how
    /// long to keep the files a request produces.
    #[serde(default)]
    pub lifecycle: Option<String>,
}

/// The header FAL reads a request's media retention from, documented as
/// `X-Fal-Object-Lifecycle-Preference: {"expiration_duration_seconds": N}`.
pub const LIFECYCLE_HEADER: &str = "x-fal-object-lifecycle-preference";

fn lifecycle_preference(headers: &HeaderMap) -> Option<String> {
    headers.get(LIFECYCLE_HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

pub struct AppState {
    pub config: EmulatorConfig,
    pub base_url: String,
    pub faults: Faults,
    pub signing_key: ed25519_dalek::SigningKey,
    files: files::FileStore,
    requests: Mutex<Vec<RecordedRequest>>,
    queue: Mutex<HashMap<String, queue::QueuedRequest>>,
    /// Woken whenever a queued request changes phase, for status streams.
    phase_changed: tokio::sync::Notify,
    deliveries: Mutex<Vec<webhook::Delivery>>,
    http: reqwest::Client,
}

impl AppState {
    fn store_file(&self, png: Vec<u8>) -> String {
        if self.config.data_uri_results {
            use base64::Engine;
            return format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
        }
        let name = self.files.add(files::FileBody::Bytes(Bytes::from(png)));
        format!("{}/files/{name}", self.base_url)
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = self.requests.lock().unwrap();
        // Bounded, so a long benchmark cannot grow it without limit.
        if requests.len() >= 10_000 {
            requests.drain(..5_000);
        }
        requests.push(request);
    }
}

#[derive(Clone)]
pub struct Emulator {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
}

impl Emulator {
    /// Binds `127.0.0.1:port` (0 for any free port) and serves on the current Tokio runtime.
    pub async fn start(config: EmulatorConfig, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            config,
            base_url: format!("http://{addr}"),
            faults: Faults::default(),
            signing_key: ed25519_dalek::SigningKey::from_bytes(&rand::random()),
            files: files::FileStore::default(),
            requests: Mutex::new(Vec::new()),
            queue: Mutex::new(HashMap::new()),
            phase_changed: tokio::sync::Notify::new(),
            deliveries: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(3))
                .build()
                .expect("an HTTP client without TLS builds"),
        });
        let app = router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state })
    }

    pub fn url(&self) -> String {
        self.state.base_url.clone()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.state.faults.add(fault);
    }

    /// Serves `bytes` at `url` (one of this emulator's `/files/…` URLs), as
    /// when a file that answered 404 comes back: lets a test watch a client
    /// retry a download that failed.
    pub fn restore_file(&self, url: &str, bytes: Vec<u8>) -> bool {
        let Some(name) = url.strip_prefix(&format!("{}/files/", self.state.base_url)) else { return false };
        self.state.files.put(name, files::FileBody::Bytes(Bytes::from(bytes)));
        true
    }

    /// Webhook delivery attempts for a queued request.
    pub fn deliveries(&self, request_id: &str) -> Vec<webhook::Delivery> {
        self.state.deliveries.lock().unwrap().iter().filter(|d| d.request_id == request_id).cloned().collect()
    }

    /// Headers that sign `body` as a webhook for `request_id` sent at
    /// `timestamp` (seconds), for tests that craft their own deliveries.
    pub fn sign_webhook(&self, request_id: &str, timestamp: u64, body: &[u8]) -> Vec<(String, String)> {
        webhook::signature_headers(&self.state.signing_key, request_id, timestamp, body)
    }

    /// Ids of queued requests whose input contains `pattern`.
    pub fn queued_request_ids(&self, pattern: &str) -> Vec<String> {
        let queue = self.state.queue.lock().unwrap();
        queue.iter().filter(|(_, r)| r.input.contains(pattern)).map(|(id, _)| id.clone()).collect()
    }

    /// Calls whose path contains `fragment` (status, result and cancel calls).
    pub fn calls_to(&self, fragment: &str) -> Vec<RecordedRequest> {
        let requests = self.state.requests.lock().unwrap();
        requests.iter().filter(|r| r.path.contains(fragment)).cloned().collect()
    }

    /// Plain polls of the status URL of `request_id` (not its stream).
    pub fn status_calls(&self, request_id: &str) -> usize {
        self.count_paths_ending(&format!("/requests/{request_id}/status"))
    }

    /// Calls to the status stream of `request_id`.
    pub fn stream_calls(&self, request_id: &str) -> usize {
        self.count_paths_ending(&format!("/requests/{request_id}/status/stream"))
    }

    fn count_paths_ending(&self, suffix: &str) -> usize {
        self.state.requests.lock().unwrap().iter().filter(|r| r.path.ends_with(suffix)).count()
    }

    /// Requests whose body contains `pattern`.
    pub fn requests_matching(&self, pattern: &str) -> Vec<RecordedRequest> {
        let requests = self.state.requests.lock().unwrap();
        requests.iter().filter(|r| r.body.to_string().contains(pattern)).cloned().collect()
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/samples/{name}", get(samples::serve))
        .route("/files/{name}", get(files::serve))
        .route("/_emulator/faults", post(add_fault).delete(clear_faults))
        .route("/_emulator/requests", get(list_requests))
        .route("/_emulator/key-sink", axum::routing::any(key_sink))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/queue/{*path}", axum::routing::any(queue::route))
        .route("/{*model_id}", post(sync::run))
        // FAL takes images inline as data URIs; axum's 2 MB default would
        // refuse the largest requests the worker admits.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}

/// Where the `Redirect` fault points: records what arrived (with or without
/// the key), so a test can tell whether a client followed with its key.
async fn key_sink(State(state): State<Arc<AppState>>, method: axum::http::Method, headers: HeaderMap) -> StatusCode {
    state.record(RecordedRequest {
        method: method.to_string(),
        path: "/_emulator/key-sink".into(),
        authorized: sync::is_authorized(&state, &headers),
        body: Value::Null,
        lifecycle: None,
    });
    StatusCode::OK
}

pub fn fal_error(status: StatusCode, detail: Value) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

async fn jwks(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(webhook::jwks(&state.signing_key))
}

async fn add_fault(State(state): State<Arc<AppState>>, Json(fault): Json<Fault>) -> StatusCode {
    state.faults.add(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(state): State<Arc<AppState>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct MatchQuery {
    #[serde(rename = "match", default)]
    pattern: String,
}

async fn list_requests(State(state): State<Arc<AppState>>, Query(q): Query<MatchQuery>) -> Json<Vec<RecordedRequest>> {
    let requests = state.requests.lock().unwrap();
    Json(requests.iter().filter(|r| r.body.to_string().contains(&q.pattern)).cloned().collect())
}
