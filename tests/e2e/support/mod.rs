//! The spawn helper, typed requests and request bodies shared by every test.

pub mod api;
pub mod metrics_sink;
pub mod raw_http;
pub mod receiver;
pub mod stack;

pub use api::{Admin, Api, Reply, TestClient};
pub use fal_emulator::faults::{Fault, FaultMode};
use serde_json::{json, Value};

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

/// Makes the emulator fail requests carrying `marker` in the given way.
pub fn inject(marker: &str, mode: FaultMode) {
    stack::emulator().add_fault(Fault { pattern: marker.to_string(), mode, delay_ms: 0, times: None });
}
