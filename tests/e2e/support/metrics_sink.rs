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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer 503 to the client's next `n` events, then 204.
    FailFirst(usize),
    /// Hold each of the client's events for 20 s (longer than our timeout).
    Stall,
}

#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    pub event: Value,
    pub answered: u16,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct Sink {
    events: Mutex<Vec<Arrival>>,
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
    pub fn deliveries(&self, generation_id: &str) -> Vec<Arrival> {
        self.events.lock().unwrap().iter().filter(|a| a.event["id"] == generation_id).cloned().collect()
    }

    /// The same, for the attempts of this generation (an alias read by the
    /// tests of what each attempt carried).
    pub fn attempts(&self, generation_id: &str) -> Vec<Arrival> {
        self.deliveries(generation_id)
    }

    pub async fn wait_for(&self, generation_id: &str, n: usize, secs: u64) -> Vec<Arrival> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.deliveries(generation_id);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "expected {n} deliveries of {generation_id}, got {got:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Exactly `n` deliveries: `n` within `secs`, then none for `quiet`.
    pub async fn exactly(&self, generation_id: &str, n: usize, secs: u64, quiet: Duration) -> Vec<Arrival> {
        self.wait_for(generation_id, n, secs).await;
        let quiet_until = Instant::now() + quiet;
        while Instant::now() < quiet_until {
            assert_eq!(self.deliveries(generation_id).len(), n, "another delivery of {generation_id} arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.deliveries(generation_id)
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
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let client = event["client_id"].as_str().unwrap_or_default().to_string();
    let (status, stall) = {
        let mut modes = sink.modes.lock().unwrap();
        match modes.get_mut(&client) {
            Some(Mode::FailFirst(n)) if *n > 0 => {
                *n -= 1;
                (StatusCode::SERVICE_UNAVAILABLE, false)
            }
            Some(Mode::Stall) => (StatusCode::NO_CONTENT, true),
            _ => (StatusCode::NO_CONTENT, false),
        }
    };
    sink.events.lock().unwrap().push(Arrival { at: Instant::now(), event, answered: status.as_u16(), authorization });
    if stall {
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    status
}
