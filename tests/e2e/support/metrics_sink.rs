//! The external metrics back end the stacks forward events to
//! (`METRICS_ENDPOINT`). It records every delivery (with its `Authorization`
//! header and when it arrived) and can be told to fail or stall the events of
//! one client, so tests sharing it stay independent.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One delivery attempt as the back end saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Value,
    pub authorization: Option<String>,
    /// When it arrived: for the tests of retry spacing (pending: issue 14).
    #[allow(dead_code)]
    pub at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fail,
    Stall,
}

#[derive(Default)]
pub struct Sink {
    events: Mutex<Vec<Delivery>>,
    modes: Mutex<HashMap<String, Mode>>,
    url: OnceLock<String>,
}

impl Sink {
    pub fn url(&self) -> String {
        self.url.get().cloned().expect("started")
    }

    pub fn set_mode(&self, client_id: &str, mode: Mode) {
        self.modes.lock().unwrap().insert(client_id.to_string(), mode);
    }

    /// Deliveries (attempts included) of the event with this generation id.
    pub fn deliveries(&self, generation_id: &str) -> Vec<Value> {
        self.attempts(generation_id).into_iter().map(|d| d.event).collect()
    }

    /// The same, with each attempt's headers and arrival time.
    pub fn attempts(&self, generation_id: &str) -> Vec<Delivery> {
        self.events.lock().unwrap().iter().filter(|d| d.event["id"] == generation_id).cloned().collect()
    }

    pub async fn wait_for(&self, generation_id: &str, n: usize, secs: u64) -> Vec<Value> {
        for _ in 0..secs * 10 {
            let got = self.deliveries(generation_id);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} deliveries of {generation_id}, got {:?}", self.deliveries(generation_id));
    }
}

pub fn sink() -> &'static Arc<Sink> {
    static SINK: OnceLock<Arc<Sink>> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Arc::new(Sink::default());
        let app = Router::new().route("/events", post(receive)).with_state(sink.clone());
        let listener = super::stack::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        sink.url.set(format!("http://{}/events", listener.local_addr().unwrap())).unwrap();
        super::stack::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        sink
    })
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, Json(event): Json<Value>) -> StatusCode {
    let mode = event["client_id"].as_str().and_then(|c| sink.modes.lock().unwrap().get(c).copied());
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    sink.events.lock().unwrap().push(Delivery { event, authorization, at: Instant::now() });
    match mode {
        Some(Mode::Fail) => StatusCode::SERVICE_UNAVAILABLE,
        Some(Mode::Stall) => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NO_CONTENT,
    }
}
