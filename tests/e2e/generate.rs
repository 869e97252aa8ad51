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
    // Without the option, the pose is preserved.
    let m = marker();
    client.generate(&try_on(&m)).expect(200).await;
    assert_eq!(stack::emulator().requests_matching(&m)[0].body["preserve_pose"], true);
}

#[tokio::test]
async fn the_reply_has_exactly_the_documented_fields() {
    let client = new_client().await;
    let reply = client.generate(&try_on(&marker())).expect(200).await;
    let mut keys: Vec<&str> = reply.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["description", "duration_ms", "fal_duration_ms", "generation_id", "image", "image_url", "model"]);
    let mut image: Vec<&str> = reply["image"].as_object().unwrap().keys().map(String::as_str).collect();
    image.sort();
    assert_eq!(image, ["content_type", "height", "url", "width"]);
    assert_eq!(reply["image"]["url"], reply["image_url"]);
    assert!(reply["generation_id"].as_str().unwrap().starts_with("gen_"));
    assert!(reply["fal_duration_ms"].as_u64().unwrap() <= reply["duration_ms"].as_u64().unwrap());
}

#[tokio::test]
async fn nano_banana_options_are_checked_at_their_limits() {
    let client = new_client().await;
    let m = marker();
    let body = |garments: usize, extra: Value| {
        let mut b = json!({ "model": "nano-banana-pro", "person_image_url": person_url(&m),
            "garment_image_urls": (0..garments).map(|i| format!("{}&g={i}", garment_url(&m))).collect::<Vec<_>>() });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    client.generate(&body(5, json!({}))).expect(200).await;
    client.generate(&body(6, json!({}))).send().await.assert_error(422, "invalid_garments");
    client.generate(&body(0, json!({}))).send().await.assert_error(422, "invalid_garments");
    let longest = "p".repeat(2000);
    client.generate(&body(1, json!({ "prompt": longest }))).expect(200).await;
    client.generate(&body(1, json!({ "prompt": "p".repeat(2001) }))).send().await.assert_error(422, "invalid_option");
    client.generate(&body(1, json!({ "prompt": "" }))).send().await.assert_error(422, "invalid_option");
    for ratio in ["auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"] {
        client.generate(&body(1, json!({ "aspect_ratio": ratio, "resolution": "1K", "output_format": "webp" }))).expect(200).await;
    }
    client.generate(&body(1, json!({ "aspect_ratio": "2:1" }))).send().await.assert_error(422, "invalid_option");
    client.generate(&body(1, json!({ "resolution": "8K" }))).send().await.assert_error(422, "invalid_option");
    client.generate(&body(1, json!({ "output_format": "gif" }))).send().await.assert_error(422, "invalid_option");
    // What reached FAL: the given prompt and options, passed through.
    let seen = stack::emulator().requests_matching(&m);
    assert!(seen.iter().any(|r| r.body["prompt"] == longest));
    assert!(seen.iter().any(|r| r.body["aspect_ratio"] == "9:16" && r.body["output_format"] == "webp" && r.body["resolution"] == "1K"));
    assert_eq!(seen.len(), 1 + 1 + 11, "refused requests never reached FAL");
}

#[tokio::test]
async fn image_urls_are_checked_at_their_limits() {
    let client = new_client().await;
    let m = marker();
    let with_person = |url: String| json!({ "model": "fal-virtual-try-on", "person_image_url": url, "garment_image_urls": [garment_url(&m)] });
    let base = person_url(&m);
    let padded = |len: usize| format!("{base}&pad={}", "x".repeat(len - base.len() - 5));
    client.generate(&with_person(padded(4096))).expect(200).await;
    client.generate(&with_person(padded(4097))).send().await.assert_error(422, "invalid_image");
    client.generate(&with_person(format!("https://user:secret@cdn.shop.example/p.png?{m}"))).send().await.assert_error(422, "invalid_image");
    // A data URI must hold the type it names.
    let png = reqwest::get(format!("{}/samples/person.png", stack::emulator().url())).await.unwrap().bytes().await.unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    client.generate(&with_person(format!("data:image/jpeg;base64,{b64}"))).send().await.assert_error(422, "invalid_image");
    client.generate(&with_person(format!("data:image/webp;base64,{b64}"))).send().await.assert_error(422, "invalid_image");
    assert_eq!(stack::emulator().requests_matching(&m).len(), 1, "only the 4096-character URL reached FAL");
}

/// A PNG data URI whose decoded size is `bytes` (the signature, then zeros).
fn png_data_uri(bytes: usize) -> String {
    let mut raw = b"\x89PNG\r\n\x1a\n".to_vec();
    raw.resize(bytes, 0);
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// The default caps (4 MiB per data-URI image, 6 MiB per body: README "Memory").
const MAX_DATA_URI: usize = tryon_edge::config::DEFAULT_MAX_DATA_URI_BYTES;
const MAX_BODY: usize = tryon_edge::config::DEFAULT_MAX_BODY_BYTES;

#[tokio::test]
async fn a_data_uri_may_decode_to_exactly_the_cap_whatever_its_padding_and_not_one_byte_more() {
    let client = new_client().await;
    let m = marker();
    let with_person = |uri: String| json!({ "model": "fal-virtual-try-on", "person_image_url": uri, "garment_image_urls": [garment_url(&m)] });
    // The last base64 block of each carries two, one and no padding bytes.
    for size in [MAX_DATA_URI - 2, MAX_DATA_URI - 1, MAX_DATA_URI] {
        let inside = client.generate(&with_person(png_data_uri(size))).send().await;
        assert_ne!(inside.body["error"]["code"], "image_too_large", "{size}: {}", &inside.text[..inside.text.len().min(300)]);
    }
    client.generate(&with_person(png_data_uri(MAX_DATA_URI + 1))).send().await.assert_error(422, "image_too_large");
}

#[tokio::test]
async fn a_body_may_be_as_large_as_the_cap_and_not_one_byte_more() {
    let client = new_client().await;
    let body = |len: usize| {
        let head = "{\"model\":\"";
        let tail = "\"}";
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    };
    // Read and parsed (then refused for its content, not its size)...
    let at_the_cap = client.post("/api/images/generate").raw("application/json", body(MAX_BODY)).send().await;
    assert_eq!(at_the_cap.status, 422, "{}", &at_the_cap.text[..at_the_cap.text.len().min(300)]);
    // ...one byte more is refused for its size.
    client.post("/api/images/generate").raw("application/json", body(MAX_BODY + 1)).send().await.assert_error(413, "payload_too_large");
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
async fn data_uri_images_reach_fal_unchanged() {
    let client = new_client().await;
    let png = reqwest::get(format!("{}/samples/person.png", stack::emulator().url())).await.unwrap().bytes().await.unwrap();
    let uri = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(&png));
    let m = marker();
    let body = json!({ "model": "fal-virtual-try-on", "person_image_url": uri, "garment_image_urls": [garment_url(&m)] });
    client.generate(&body).expect(200).await;
    let seen = stack::emulator().requests_matching(&m);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["person_image_url"].as_str(), Some(uri.as_str()), "FAL got the data URI byte for byte");
    assert_eq!(seen[0].body["clothing_image_url"].as_str(), Some(garment_url(&m).as_str()));
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
async fn fal_bad_requests_become_422_with_fals_reason_are_recorded_and_cost_nothing() {
    let client = Api::shared().login().await.create_client(json!({ "name": format!("Refused {}", marker()), "usage_limit": 1 })).await;
    let m = marker();
    inject(&m, FaultMode::Error400);
    let reply = client.generate(&try_on(&m)).send().await;
    reply.assert_error(422, "upstream_rejected_input");
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("Failed to download the file at image_url"), "{}", reply.body);
    assert_recorded_error(&client, "Failed to download the file at image_url").await;
    assert_eq!(client.wait_until_settled().await["used"], 0);
    client.generate(&try_on(&marker())).expect(200).await;
}

#[tokio::test]
async fn a_busy_fal_becomes_503_is_recorded_and_costs_nothing() {
    let client = Api::shared().login().await.create_client(json!({ "name": format!("Busy {}", marker()), "usage_limit": 1 })).await;
    let m = marker();
    inject(&m, FaultMode::RateLimited);
    client.generate(&try_on(&m)).send().await.assert_error(503, "upstream_busy");
    assert_recorded_error(&client, "HTTP 429").await;
    assert_eq!(client.wait_until_settled().await["used"], 0);
    client.generate(&try_on(&marker())).expect(200).await;
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
