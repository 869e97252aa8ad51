//! `POST /api/images/generate`: validation, the FAL call, and recording every attempt.

use crate::support::{garment_url, inject, marker, person_url, stack, try_on, Api, FaultMode, TestClient};
use base64::Engine;
use serde_json::{json, Value};
use std::time::Instant;

async fn new_client() -> TestClient {
    Api::shared().login().await.new_client().await
}

#[tokio::test]
async fn try_on_sends_fal_its_own_input_shape_with_our_key() {
    let client = new_client().await;
    let m = marker();
    let body = json!({ "model": "fal-virtual-try-on", "person_image_url": person_url(&m), "garment_image_urls": [garment_url(&m)], "preserve_pose": false });
    client.generate(&body).expect(200).await;
    let seen = stack::emulator().requests_matching(&m);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/fal-ai/image-apps-v2/virtual-try-on");
    assert!(seen[0].authorized, "the FAL key travels as `Authorization: Key …`");
    assert_eq!(
        seen[0].body,
        json!({ "person_image_url": person_url(&m), "clothing_image_url": garment_url(&m), "preserve_pose": false })
    );
}

#[tokio::test]
async fn nano_banana_composes_several_garments_with_a_default_prompt() {
    let client = new_client().await;
    let m = marker();
    let garments = vec![garment_url(&m), format!("{}&second", garment_url(&m))];
    let body = json!({ "model": "nano-banana-pro", "person_image_url": person_url(&m), "garment_image_urls": garments, "resolution": "2K" });
    let reply = client.generate(&body).expect(200).await;
    assert_eq!(reply["model"], "nano-banana-pro");
    assert!(reply["description"].as_str().unwrap().contains("2 garment"));

    let seen = stack::emulator().requests_matching(&m);
    assert_eq!(seen[0].path, "/fal-ai/nano-banana-pro/edit");
    let input = &seen[0].body;
    assert_eq!(input["image_urls"], json!([person_url(&m), garments[0], garments[1]]));
    assert_eq!(input["num_images"], 1);
    assert_eq!(input["resolution"], "2K");
    assert!(input["prompt"].as_str().unwrap().len() > 40);
}

#[tokio::test]
async fn data_uri_images_are_accepted() {
    let client = new_client().await;
    let png = reqwest::get(format!("{}/samples/person.png", stack::emulator().url())).await.unwrap().bytes().await.unwrap();
    let uri = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
    let m = marker();
    let body = json!({ "model": "fal-virtual-try-on", "person_image_url": uri, "garment_image_urls": [garment_url(&m)] });
    let reply = client.generate(&body).expect(200).await;
    let image = reqwest::get(reply["image_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    assert!(image.bytes().await.unwrap().starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn bad_input_is_refused_before_fal_and_records_nothing() {
    let client = new_client().await;
    let m = marker();
    let valid = try_on(&m);
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("model", json!("dall-e")), 422, "unknown_model"),
        (with("model", json!(7)), 422, "invalid_request"),
        (with("garment_image_urls", json!([garment_url(&m), garment_url(&m)])), 422, "invalid_garments"),
        (with("garment_image_urls", json!([])), 422, "invalid_garments"),
        (with("person_image_url", json!(format!("http://shop.example/p.png?{m}"))), 422, "invalid_image"),
        (with("person_image_url", json!(format!("ftp://127.0.0.1/p.png?{m}"))), 422, "invalid_image"),
        (with("person_image_url", json!("data:image/gif;base64,R0lGODlh")), 422, "invalid_image"),
        (with("resolution", json!("4K")), 422, "unsupported_option"),
        (with("surprise", json!(true)), 422, "invalid_request"),
        (json!({ "model": "fal-virtual-try-on", "garment_image_urls": [garment_url(&m)] }), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        client.generate(&body).send().await.assert_error(status, code);
    }
    client.post("/api/images/generate").raw("application/json", format!("{{\"model\": {m}")).send().await.assert_error(400, "malformed_json");
    client.post("/api/images/generate").raw("text/plain", valid.to_string()).send().await.assert_error(415, "unsupported_media_type");
    client.post("/api/images/generate").send().await.assert_error(415, "unsupported_media_type");

    let huge_image = format!("data:image/png;base64,iVBORw0KGgo{}", "A".repeat(12 * 1024 * 1024));
    client.generate(&with("person_image_url", json!(huge_image))).send().await.assert_error(422, "image_too_large");
    let oversized = format!("{{\"model\":\"{}\"}}", "x".repeat(26 * 1024 * 1024));
    client.post("/api/images/generate").raw("application/json", oversized).send().await.assert_error(413, "payload_too_large");

    assert!(stack::emulator().requests_matching(&m).is_empty(), "nothing reached FAL");
    assert!(client.history().await.is_empty(), "nothing was recorded");
}

async fn assert_recorded_error(client: &TestClient, fragment: &str) {
    let history = client.history().await;
    assert_eq!(history.len(), 1, "exactly one attempt recorded: {history:?}");
    assert_eq!(history[0]["status"], "error");
    assert_eq!(history[0]["image_url"], Value::Null);
    let error = history[0]["error"].as_str().unwrap();
    assert!(error.contains(fragment), "{error:?} should mention {fragment:?}");
}

#[tokio::test]
async fn fal_server_errors_become_502_and_are_recorded() {
    let client = new_client().await;
    let m = marker();
    inject(&m, FaultMode::Error500);
    client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_error");
    assert_recorded_error(&client, "HTTP 500").await;
}

#[tokio::test]
async fn fal_validation_errors_become_422_with_fals_reason() {
    let client = new_client().await;
    let m = marker();
    inject(&m, FaultMode::Error422);
    let reply = client.generate(&try_on(&m)).send().await;
    reply.assert_error(422, "upstream_rejected_input");
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("Could not load the image"));
    assert_recorded_error(&client, "Could not load the image").await;
}

#[tokio::test]
async fn a_hanging_fal_becomes_504_after_the_timeout() {
    let client = new_client().await;
    let m = marker();
    inject(&m, FaultMode::Hang);
    let started = Instant::now();
    client.generate(&try_on(&m)).send().await.assert_error(504, "upstream_timeout");
    let waited = started.elapsed().as_millis() as u64;
    assert!(waited >= stack::FAL_TIMEOUT_MS && waited < stack::FAL_TIMEOUT_MS + 5000, "waited {waited} ms");
    assert_recorded_error(&client, "did not answer").await;
}

#[tokio::test]
async fn malformed_fal_output_becomes_502() {
    let client = new_client().await;
    let m = marker();
    inject(&m, FaultMode::Malformed);
    client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_malformed_response");
    assert_recorded_error(&client, "unreadable").await;
}

#[tokio::test]
async fn a_refused_fal_key_is_an_operator_problem_not_the_clients() {
    let client = new_client().await;
    let m = marker();
    inject(&m, FaultMode::Unauthorized);
    let reply = client.generate(&try_on(&m)).send().await;
    reply.assert_error(502, "upstream_error");
    assert!(!reply.text.contains("401"), "credentials problems are not detailed to clients");
    assert_recorded_error(&client, "credentials").await;
}

#[tokio::test]
async fn slow_fal_answers_within_the_timeout_succeed() {
    let client = new_client().await;
    let m = marker();
    stack::emulator().add_fault(crate::support::Fault { pattern: m.clone(), mode: FaultMode::Slow, delay_ms: 1200, times: None });
    let reply = client.generate(&try_on(&m)).expect(200).await;
    assert!(reply["duration_ms"].as_u64().unwrap() >= 1200);
    assert!(reply["fal_duration_ms"].as_u64().unwrap() >= 1200);
}
