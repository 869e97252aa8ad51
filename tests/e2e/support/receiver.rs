//! A client's back end, as far as callbacks go: records what it receives (and
//! when) and can be told to fail the first deliveries. It answers any path,
//! so it can also stand in for another origin the worker posts to.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived: for the tests of retry spacing (pending: issue 14).
    #[allow(dead_code)]
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    fail_first: Mutex<usize>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    /// Starts on a free port; the first `fail_first` deliveries get a 500.
    pub async fn start(fail_first: usize) -> Self {
        let inner = Arc::new(Inner { received: Mutex::new(Vec::new()), fail_first: Mutex::new(fail_first) });
        let app = Router::new().route("/hook", post(receive)).fallback(receive).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// `http://127.0.0.1:port`, without a path.
    pub fn origin(&self) -> String {
        self.url.trim_end_matches("/hook").to_string()
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries arrived (or panics after `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 10 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.received());
    }
}

async fn receive(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let path = uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.to_string());
    inner.received.lock().unwrap().push(Received { path, headers, body: String::from_utf8_lossy(&body).into(), at: Instant::now() });
    let mut fail = inner.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}
