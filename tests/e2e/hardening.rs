//! Closed holes found by reviewing the code as an attacker would: nothing
//! a request sends can take the worker down, no body is buffered past its
//! cap before authentication, and our FAL key goes nowhere but FAL.

use crate::support::raw_http::{chunked_upload, EndlessServer};
use crate::support::stack::{self, FAL_KEY};
use crate::support::{garment_url, inject, marker, person_url, try_on, Api, FaultMode};
use serde_json::json;
use tryon_edge::domain::api_key::{ApiKey, KeyKind};
use tryon_edge::domain::ids::ClientId;

const MIB: usize = 1024 * 1024;

/// A well-formed key of a client that does not exist: what an attacker
/// without any credential can always produce.
fn forged_key() -> String {
    ApiKey::generate(&ClientId::generate(), KeyKind::Secret).reveal().to_string()
}

#[tokio::test]
async fn a_non_ascii_api_key_is_refused_and_the_worker_keeps_serving() {
    let admin = Api::shared().login().await;
    let shop = admin.new_client().await;
    // `vto_` + 15 × a + é + `_` + 37 × A: é straddles the offset where the
    // client id ends. Sent as UTF-8 (two bytes, as the review wrote it) and
    // as one Latin-1 byte, since runtimes differ in how they decode headers.
    let evil = |e: &[u8]| [b"vto_".as_slice(), &[b'a'; 15], e, b"_", &[b'A'; 37]].concat();
    let (utf8, latin1) = (evil("é".as_bytes()), evil(&[0xE9]));
    let api = Api::shared();
    let attacks = [&utf8, &latin1, &utf8, &latin1].map(|key| api.get("/api/usage").header_bytes("x-api-key", key).send());
    let bearer = api.get("/api/usage").header_bytes("authorization", &[b"Bearer ".as_slice(), &utf8].concat()).send();
    let m = marker();
    let (replies, bearer, shoppers_generation) =
        tokio::join!(futures::future::join_all(attacks), bearer, shop.generate(&try_on(&m)).send());
    for reply in replies.iter().chain([&bearer]) {
        reply.assert_error(401, "invalid_api_key");
    }
    assert_eq!(shoppers_generation.status, 200, "another shop's generation in flight: {}", shoppers_generation.text);
    shop.get("/api/usage").expect(200).await;
}

#[tokio::test]
async fn chunked_bodies_are_cut_off_at_the_cap_before_authentication() {
    let base = stack::shared().base.clone();
    let key = forged_key();
    let json_headers = [("content-type", "application/json"), ("x-api-key", key.as_str())];
    // (path, headers, the route's cap): the generation cap is MAX_BODY_BYTES
    // (6 MiB by default), login's 4 KiB, the webhook's 5 MiB.
    let max_body = tryon_edge::config::DEFAULT_MAX_BODY_BYTES;
    let cases: [(&str, &[(&str, &str)], usize); 4] = [
        ("/api/images/generate", &json_headers, max_body),
        ("/api/jobs", &json_headers, max_body),
        ("/admin/login", &[("content-type", "application/json")], 4096),
        ("/api/webhooks/fal?job=job_aaaaaaaaaaaaaaaaaaaa", &[("content-type", "application/json")], 5 * MIB),
    ];
    for (path, headers, cap) in cases {
        // Just over the cap, sent whole: refused by its real length.
        let over = chunked_upload(&base, path, headers, cap + 1).await;
        assert_eq!(over.status, 413, "{path}: {over:?}");
        // Without end: answered once the cap was passed (plus what sat in
        // socket buffers), not after the whole body, which was never read.
        let endless = chunked_upload(&base, path, headers, cap + 200 * MIB).await;
        assert!(endless.sent_when_answered < cap + 64 * MIB, "{path} read past its cap: {endless:?}");
        // wrangler dev's proxy sometimes turns an answer given before the
        // upload ended into its own 503 ("restarted mid-request"); the
        // worker itself answered early either way, and keeps serving.
        let proxy_cut = endless.status == 503 && endless.head.contains("restarted mid-request");
        assert!(endless.status == 413 || proxy_cut, "{path}: {endless:?}");
        Api::shared().get("/health").expect(200).await;
    }
}

/// The other side of the caps above: a body of exactly the cap is read
/// whole and acted on (JSON allows the whitespace that pads it).
#[tokio::test]
async fn login_and_fal_webhook_bodies_exactly_at_their_caps_are_read() {
    use crate::support::fal_webhooks;
    let api = Api::shared();
    let padded = |json: String, len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    let login = |len: usize| api.post("/admin/login").raw("application/json", padded(json!({ "password": stack::ADMIN_PASSWORD }).to_string(), len)).send();
    let at_cap = login(4096).await;
    assert_eq!(at_cap.status, 200, "{}", at_cap.text);
    assert!(at_cap.header("set-cookie").is_some_and(|c| c.starts_with("__Host-vto_admin_session=")));
    login(4097).await.assert_error(413, "payload_too_large");

    let client = api.login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::WebhookNever);
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let id = job["id"].as_str().unwrap();
    let request = stack::emulator().queued_request_ids(&m)[0].clone();
    let body = |len: usize| padded(fal_webhooks::ok_body(&request, &garment_url(&m)), len);
    let key = fal_webhooks::emulator_key();
    fal_webhooks::deliver(&api, id, &request, &body(5 * MIB + 1), &key, fal_webhooks::now_s()).await.assert_error(413, "payload_too_large");
    let at_cap = fal_webhooks::deliver(&api, id, &request, &body(5 * MIB), &key, fal_webhooks::now_s()).await;
    assert_eq!((at_cap.status, &at_cap.body["changed"]), (200, &json!(true)), "{}", at_cap.text);
    assert_eq!(client.get(&format!("/api/jobs/{id}")).expect(200).await["status"], "done");
}

#[tokio::test]
async fn a_huge_garment_list_is_refused_by_its_count() {
    let client = Api::shared().login().await.new_client().await;
    let mut urls = vec![String::new(); 2_000_000];
    urls[0] = garment_url(&marker());
    let body = json!({ "model": "nano-banana-pro", "person_image_url": person_url(&marker()), "garment_image_urls": urls });
    let started = std::time::Instant::now();
    let reply = client.generate(&body).send().await;
    reply.assert_error(422, "invalid_garments");
    assert!(reply.text.contains("got 2000000"), "{}", reply.text);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(client.history().await.is_empty());
}

#[tokio::test]
async fn a_fal_redirect_is_not_followed_with_our_key() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::Redirect);
    client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_error");
    let sink = stack::emulator().calls_to("/_emulator/key-sink");
    assert!(sink.iter().all(|r| !r.authorized), "the FAL key followed a redirect: {sink:?}");
}

#[tokio::test]
async fn queue_urls_on_another_origin_are_refused_before_the_key_goes_there() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::ForeignQueueUrls);
    client.post("/api/jobs").json(&try_on(&m)).send().await.assert_error(502, "upstream_malformed_response");
    let request = stack::emulator().queued_request_ids(&m);
    assert_eq!(request.len(), 1);
    // Nothing was ever asked of the foreign URLs (nor of the real ones).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stack::emulator().status_calls(&request[0]), 0);
    let usage = client.wait_until_settled().await;
    assert_eq!(usage["used"], 0);
}

#[tokio::test]
async fn an_oversized_fal_answer_is_refused_not_buffered() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    inject(&m, FaultMode::HugeAnswer);
    client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_malformed_response");
    let usage = client.wait_until_settled().await;
    assert_eq!(usage["used"], 0);
}

#[tokio::test]
async fn a_callback_receiver_answering_without_end_is_read_no_further_than_its_cap() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let receiver = EndlessServer::start().await;
    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": format!("{}/hooks", receiver.url) })).expect(200).await;
    let job = client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    let id = job["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if client.get(&format!("/api/jobs/{id}")).expect(200).await["status"] == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The receiver said 200: delivered once, with no retry, although its
    // body never ends; and the worker stopped reading it near its cap.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert_eq!(receiver.connections(), 1);
    assert!(receiver.taken() < 32 * MIB, "read {} bytes of the receiver's answer", receiver.taken());
}

#[tokio::test]
async fn the_session_cookie_has_the_host_prefix() {
    let reply = Api::shared().post("/admin/login").json(&json!({ "password": stack::ADMIN_PASSWORD })).send().await;
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-vto_admin_session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.to_ascii_lowercase().contains("domain="));
    // The key never appears anywhere a client can see it.
    assert!(!reply.text.contains(FAL_KEY));
}

#[tokio::test]
async fn the_contract_is_served() {
    let api = Api::shared();
    let reply = api.get("/openapi.json").send().await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(reply.body["openapi"], "3.1.0");
    assert!(reply.body["paths"]["/api/images/generate"]["post"].is_object());
    assert!(reply.header("cache-control").unwrap().contains("max-age"));
}
