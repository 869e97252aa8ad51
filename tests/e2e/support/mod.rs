//! The spawn helper, typed requests and request bodies shared by every test.

pub mod api;
pub mod clock;
pub mod fal_webhooks;
pub mod jwks;
pub mod keys;
pub mod local_state;
pub mod metrics_sink;
pub mod raw_http;
pub mod receiver;
pub mod restart_scenario;
pub mod stack;

pub use api::{Admin, Api, Reply, TestClient};
pub use fal_emulator::faults::{Fault, FaultMode};
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

/// A unique marker. Tests put it in their image URLs so the shared emulator
/// can fail just their requests and report just what they sent.
pub fn marker() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("m{}x{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos)
}

pub fn person_url(marker: &str) -> String {
    format!("{}/samples/person.png?m={marker}", stack::emulator().url())
}

pub fn garment_url(marker: &str) -> String {
    format!("{}/samples/garment.png?m={marker}", stack::emulator().url())
}

/// A valid synchronous try-on body whose URLs carry `marker`.
pub fn try_on(marker: &str) -> Value {
    json!({
        "model": "fal-virtual-try-on",
        "person_image_url": person_url(marker),
        "garment_image_urls": [garment_url(marker)],
    })
}

/// The emulator's sample image at `name` as a PNG data URI.
pub async fn sample_data_uri(name: &str) -> String {
    use base64::Engine;
    let bytes = reqwest::get(format!("{}/samples/{name}", stack::emulator().url())).await.unwrap().bytes().await.unwrap();
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes))
}

/// A try-on whose images are data URIs, for stacks that refuse loopback URLs.
pub async fn data_uri_try_on() -> Value {
    json!({
        "model": "fal-virtual-try-on",
        "person_image_url": sample_data_uri("person.png").await,
        "garment_image_urls": [sample_data_uri("garment.png").await],
    })
}

/// Makes the emulator fail requests carrying `marker` in the given way.
pub fn inject(marker: &str, mode: FaultMode) {
    stack::emulator().add_fault(Fault { pattern: marker.to_string(), mode, delay_ms: 0, times: None });
}

/// Makes the emulator fail requests carrying `marker` in the given way, after `delay_ms`.
pub fn inject_after(marker: &str, mode: FaultMode, delay_ms: u64) {
    stack::emulator().add_fault(Fault { pattern: marker.to_string(), mode, delay_ms, times: None });
}

/// Waits until `check` yields a value, asking again every 50 ms; panics with
/// `what` (and the last thing `check` saw) after `within`. Tests wait on
/// observed state, never for a fixed time, so a slow machine only makes them
/// slower, not wrong.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => panic!("waited {within:?} for {what}; last saw: {seen}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Lets `period` pass, for the one kind of assertion that needs it: that
/// nothing *more* happens (no second callback, no extra delivery). Only
/// after the awaited thing has been observed.
pub async fn quiet_period(period: Duration) {
    tokio::time::sleep(period).await;
}
