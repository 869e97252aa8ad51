//! The worker as production runs it: `TEST_CLOCK` unset (so `x-test-now`
//! means nothing), loopback image URLs refused, no `WEBHOOK_SIGNING_KEY` (so
//! no callbacks); and every optional setting moved off its default, to see
//! that each is obeyed (see `stack::production_like`).

use crate::support::clock::{now_ms, DAY};
use crate::support::stack::{self, NANO_BANANA_OVERRIDE, SMALL_MAX_BODY_BYTES, SMALL_MAX_DATA_URI_BYTES};
use crate::support::{data_uri_try_on, garment_url, marker, try_on, wait_until, Api};
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

fn api() -> Api {
    Api::new(&stack::production_like().stack)
}


#[tokio::test]
async fn x_test_now_is_ignored_unless_test_clock_is_enabled() {
    let api = api();
    let admin = api.login().await;
    // Eight days on, a session would be long expired: the header changes nothing.
    let later = (now_ms() + 8 * DAY).to_string();
    admin.get("/admin/session").header("x-test-now", &later).expect(200).await;

    let client = admin.create_client(json!({ "name": format!("Clockless {}", marker()), "usage_limit": 1 })).await;
    let january = "1801439940000"; // 2027-01-31T23:59:00Z
    let body = data_uri_try_on().await;
    let generated = client.generate(&body).header("x-test-now", january).expect(200).await;
    let history = client.history().await;
    let recorded = chrono::DateTime::parse_from_rfc3339(history[0]["created_at"].as_str().unwrap()).unwrap().timestamp_millis() as u64;
    assert!(recorded.abs_diff(now_ms()) < 60_000, "recorded at the real time, not 2027: {}", history[0]["created_at"]);
    assert_eq!(history[0]["id"], generated["generation_id"]);
    // The quota is this real month's: used up, whatever month the header names.
    let usage = client.get("/api/usage").header("x-test-now", january).expect(200).await;
    let this_month = chrono::DateTime::from_timestamp_millis(now_ms() as i64).unwrap().format("%Y-%m").to_string();
    assert_eq!(usage["month"].as_str(), Some(this_month.as_str()));
    client.generate(&body).header("x-test-now", "1804118400000").send().await.assert_error(429, "quota_exceeded");
}

#[tokio::test]
async fn without_webhook_signing_key_callback_urls_cannot_be_set() {
    let admin = api().login().await;
    let client = admin.new_client().await;
    let path = format!("/admin/clients/{}", client.id);
    admin
        .patch(&path)
        .json(&json!({ "webhook_url": "https://shop.example/hooks/tryon" }))
        .send()
        .await
        .assert_error(503, "service_unavailable");
    admin.post(&format!("{path}/webhook-secret")).send().await.assert_error(503, "service_unavailable");
    assert_eq!(admin.get(&path).expect(200).await["webhook_url"], Value::Null);
}

#[tokio::test]
async fn loopback_urls_are_refused_unless_allowed_for_development() {
    let admin = api().login().await;
    let client = admin.new_client().await;
    let m = marker();
    client.generate(&try_on(&m)).send().await.assert_error(422, "invalid_image");
    let body = json!({ "model": "fal-virtual-try-on", "person_image_url": format!("http://localhost:9/p.png?{m}"), "garment_image_urls": [garment_url(&m)] });
    client.generate(&body).send().await.assert_error(422, "invalid_image");
    admin
        .patch(&format!("/admin/clients/{}", client.id))
        .json(&json!({ "webhook_url": "http://127.0.0.1:9/hook" }))
        .send()
        .await
        .assert_error(422, "invalid_webhook_url");
    assert!(stack::production_like().emulator.requests_matching(&m).is_empty());
}

#[tokio::test]
async fn max_body_bytes_and_max_data_uri_bytes_set_the_caps() {
    let client = api().login().await.new_client().await;
    // A data URI decoding to one byte under the cap passes (padding aside:
    // `generate::a_data_uri_may_decode_to_exactly_the_cap_whatever_its_padding_and_not_one_byte_more`)...
    let png = |bytes: usize| {
        let mut raw = b"\x89PNG\r\n\x1a\n".to_vec();
        raw.resize(bytes, 0);
        format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(raw))
    };
    let garment = data_uri_try_on().await["garment_image_urls"][0].clone();
    let with_person = |uri: String| json!({ "model": "fal-virtual-try-on", "person_image_url": uri, "garment_image_urls": [garment.clone()] });
    assert_eq!(SMALL_MAX_DATA_URI_BYTES % 3, 1);
    let inside = client.generate(&with_person(png(SMALL_MAX_DATA_URI_BYTES - 1))).send().await;
    assert_ne!(inside.body["error"]["code"], "image_too_large", "{}", inside.text);
    // ...one byte over it does not.
    client.generate(&with_person(png(SMALL_MAX_DATA_URI_BYTES + 1))).send().await.assert_error(422, "image_too_large");

    let body = |len: usize| format!("{{\"model\":\"{}\"}}", "x".repeat(len - 12));
    assert_eq!(body(SMALL_MAX_BODY_BYTES).len(), SMALL_MAX_BODY_BYTES);
    let at_the_cap = client.post("/api/images/generate").raw("application/json", body(SMALL_MAX_BODY_BYTES)).send().await;
    assert_eq!(at_the_cap.status, 422, "read, then refused for its content: {}", at_the_cap.text);
    client.post("/api/images/generate").raw("application/json", body(SMALL_MAX_BODY_BYTES + 1)).send().await.assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn fal_model_endpoints_overrides_a_models_endpoint() {
    let client = api().login().await.new_client().await;
    let m = marker();
    let try_on = data_uri_try_on().await;
    let body = json!({ "model": "nano-banana-pro", "person_image_url": try_on["person_image_url"], "garment_image_urls": try_on["garment_image_urls"], "prompt": format!("Dress the person ({m})") });
    client.generate(&body).expect(200).await;
    let seen = stack::production_like().emulator.requests_matching(&m);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/{NANO_BANANA_OVERRIDE}"));
}

/// Result URLs live `RESULT_URL_TTL_SECONDS` (their expiry rounded down to
/// a 24th of a lifetime this short: 5 minutes), under `PUBLIC_BASE_URL`; FAL is asked to keep its file
/// `FAL_OUTPUT_EXPIRATION_SECONDS`.
#[tokio::test]
async fn result_url_ttl_and_fal_output_expiration_follow_their_settings() {
    use crate::support::stack::{SHORT_FAL_OUTPUT_EXPIRATION_SECONDS, SHORT_RESULT_URL_TTL_SECONDS};
    let production = stack::production_like();
    let client = api().login().await.new_client().await;
    let m = marker();
    let try_on = data_uri_try_on().await;
    let body = json!({ "model": "nano-banana-pro", "person_image_url": try_on["person_image_url"], "garment_image_urls": try_on["garment_image_urls"], "prompt": format!("Dress the person ({m})") });
    let before_s = now_ms() / 1000;
    let reply = client.generate(&body).expect(200).await;
    let after_s = now_ms() / 1000;
    let url = reply["image_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/v1/results/", production.public_origin.origin())), "{url}");
    let exp: u64 = url.split(['?', '&']).find_map(|p| p.strip_prefix("exp=")).unwrap().parse().unwrap();
    let step = SHORT_RESULT_URL_TTL_SECONDS / 24;
    assert_eq!(exp % step, 0, "rounded down to {step} s: {exp}");
    assert!(exp > before_s + SHORT_RESULT_URL_TTL_SECONDS - step && exp <= after_s + SHORT_RESULT_URL_TTL_SECONDS, "exp {exp}, now {before_s}");
    let seen = production.emulator.requests_matching(&m);
    assert_eq!(seen[0].lifecycle, Some(format!(r#"{{"expiration_duration_seconds":{SHORT_FAL_OUTPUT_EXPIRATION_SECONDS}}}"#)));
}

#[tokio::test]
async fn fals_webhook_is_sent_to_public_base_url() {
    let production = stack::production_like();
    let client = api().login().await.new_client().await;
    let job = client.post("/api/jobs").json(&data_uri_try_on().await).expect(202).await;
    let id = job["id"].as_str().unwrap().to_string();
    let expected = format!("/api/webhooks/fal?job={id}&");
    let delivered = wait_until("FAL's webhook at PUBLIC_BASE_URL", Duration::from_secs(15), || async {
        let got = production.public_origin.received().into_iter().find(|r| r.path.starts_with(&expected));
        got.ok_or_else(|| format!("{:?}", production.public_origin.received().iter().map(|r| r.path.clone()).collect::<Vec<_>>()))
    })
    .await;
    assert!(delivered.header("x-fal-webhook-signature").is_some());
}
