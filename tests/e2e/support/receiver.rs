//! A client's back end, as far as callbacks go: records every arrival with
//! its time and path, and answers as told — a number of failures first,
//! failing until told otherwise, or never listening at all — reprogrammable
//! mid-test. It answers any path, so it can also stand in for another origin
//! the worker posts to. Its callback URL ends in a path of its own
//! (`/hook/<token>`): the port of a receiver that a finished test dropped
//! may be handed to a new one while the worker still retries the old
//! client's events there, and those must not count as the new test's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// Path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// Whether the Standard Webhooks signature verifies under `secret` (`whsec_…`).
    pub fn verifies(&self, secret: &str) -> bool {
        let (Some(id), Some(ts), Some(sig)) =
            (self.header("webhook-id"), self.header("webhook-timestamp"), self.header("webhook-signature"))
        else {
            return false;
        };
        verify(secret, id, ts, &self.body, sig)
    }
}

pub fn verify(secret: &str, id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|s| s == expected)
}

#[derive(Default)]
struct Inner {
    /// `/hook/<token>`: the callback path that is this receiver's.
    own_hook: String,
    received: Mutex<Vec<Received>>,
    /// Deliveries still to fail before answering 204.
    fail_first: Mutex<usize>,
    /// Fails every delivery while set.
    down: Mutex<bool>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

impl Receiver {
    /// Starts on a free port; the first `fail_first` deliveries get a 500.
    pub async fn start(fail_first: usize) -> Self {
        let own_hook = format!("/hook/{}", super::marker());
        let inner = Arc::new(Inner { own_hook: own_hook.clone(), fail_first: Mutex::new(fail_first), ..Inner::default() });
        let app = Router::new().fallback(receive).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{own_hook}", listener.local_addr().unwrap());
        super::stack::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner }
    }

    /// Answers 500 to everything until `set_down(false)`.
    pub fn set_down(&self, down: bool) {
        *self.inner.down.lock().unwrap() = down;
    }

    /// `http://127.0.0.1:port`, without a path.
    pub fn origin(&self) -> String {
        self.url.trim_end_matches(self.inner.own_hook.as_str()).to_string()
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries arrived (or panics after `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "expected {n} deliveries within {secs} s, got {}: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for exactly `n` deliveries: `n` within `secs`, then nothing
    /// more for `quiet` (longer than the next retry would take).
    pub async fn exactly(&self, n: usize, secs: u64, quiet: Duration) -> Vec<Received> {
        self.wait_for(n, secs).await;
        let quiet_until = Instant::now() + quiet;
        while Instant::now() < quiet_until {
            let got = self.received();
            assert_eq!(got.len(), n, "expected exactly {n} deliveries, another arrived: {got:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.received()
    }
}

/// Seconds between consecutive arrivals.
pub fn gaps(arrivals: &[Received]) -> Vec<f64> {
    arrivals.windows(2).map(|w| w[1].at.duration_since(w[0].at).as_secs_f64()).collect()
}

async fn receive(State(inner): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    // Another receiver's callbacks, still retried at a port now ours: not ours to count.
    if uri.path().starts_with("/hook") && uri.path() != inner.own_hook {
        return StatusCode::GONE;
    }
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let status = {
        let mut fail = inner.fail_first.lock().unwrap();
        if *inner.down.lock().unwrap() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if *fail > 0 {
            *fail -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        }
    };
    let at = Instant::now();
    let path = uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.to_string());
    inner.received.lock().unwrap().push(Received { at, path, headers, body: String::from_utf8_lossy(&body).into(), answered: status.as_u16() });
    status
}
