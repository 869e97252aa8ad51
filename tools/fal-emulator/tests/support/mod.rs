//! Helpers shared by the emulator's HTTP tests: a fresh emulator on a free
//! port, and typed calls to it over real HTTP.

#![allow(dead_code)] // each test binary uses its own subset

use fal_emulator::faults::{Fault, FaultMode};
use fal_emulator::{Emulator, EmulatorConfig};
use serde_json::{json, Value};
use std::time::Duration;

pub const KEY: &str = "Key emulator-key";
pub const TRY_ON: &str = "fal-ai/image-apps-v2/virtual-try-on";

pub async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::default(), 0).await.expect("the emulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A try-on input carrying `marker`, so faults can be aimed at it.
pub fn try_on_input(emulator: &Emulator, marker: &str) -> Value {
    json!({
        "person_image_url": format!("{}/samples/person.png?{marker}", emulator.url()),
        "clothing_image_url": format!("{}/samples/garment.png", emulator.url()),
    })
}

pub fn fault(emulator: &Emulator, marker: &str, mode: FaultMode, delay_ms: u64, times: Option<u32>) {
    emulator.add_fault(Fault { pattern: marker.into(), mode, delay_ms, times });
}

pub async fn post_json(url: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
    client().post(url).header("authorization", KEY).header("content-type", "application/json").body(body.to_string()).send().await
}

pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).header("authorization", KEY).send().await.expect("the emulator answers")
}

pub async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.expect("a whole body")).expect("a JSON body")
}

/// Calls the synchronous API.
pub async fn run(emulator: &Emulator, input: &Value) -> reqwest::Result<reqwest::Response> {
    post_json(&format!("{}/{TRY_ON}", emulator.url()), input).await
}

/// Submits to the queue and returns FAL's answer (`request_id`, `status_url`, …).
pub async fn submit(emulator: &Emulator, input: &Value, webhook: Option<&str>) -> Value {
    let mut url = format!("{}/queue/{TRY_ON}", emulator.url());
    if let Some(hook) = webhook {
        url = format!("{url}?fal_webhook={hook}");
    }
    let response = post_json(&url, input).await.expect("the emulator answers");
    assert_eq!(response.status(), 200);
    json_of(response).await
}

/// Polls the status URL until COMPLETED.
pub async fn wait_until_completed(submitted: &Value) {
    let status_url = submitted["status_url"].as_str().unwrap();
    for _ in 0..100 {
        if json_of(get(status_url).await).await["status"] == "COMPLETED" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{status_url} never completed");
}

/// The `data:` payloads of a whole server-sent event stream.
pub async fn read_events(mut response: reqwest::Response) -> Vec<Value> {
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("the stream ends cleanly") {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("the stream closes");
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("each event is JSON"))
        .collect()
}
