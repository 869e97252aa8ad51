//! Result images: kept in our bucket (R2, local in wrangler dev), linked by
//! signed URLs the worker serves, refused when they are not images we keep,
//! retried when FAL cannot serve them, and deleted by retention and erasure.

use crate::support::local_state::d1_execute;
use crate::support::stack::{self, StackOptions, SIGNING_KEYS};
use crate::support::{inject, marker, try_on, Admin, Api, Fault, FaultMode, TestClient};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::{Duration, Instant};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = no_redirects().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The URL with one query parameter replaced.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let replaced = if k == name { value.to_string() } else { v.into_owned() };
            (k.into_owned(), replaced)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// A result URL signed the documented way with the test stack's key:
/// tag = base64url(HMAC(HMAC(secret, "result-url"), "{generation}\n{client}\n{exp}")).
fn signed_url(base: &str, client_id: &str, generation_id: &str, exp: u64) -> String {
    let (kid, secret) = SIGNING_KEYS.split_once(':').unwrap();
    let mut derive = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    derive.update(b"result-url");
    let mut mac = Hmac::<Sha256>::new_from_slice(&derive.finalize().into_bytes()).unwrap();
    mac.update(format!("{generation_id}\n{client_id}\n{exp}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{base}/v1/results/{generation_id}?client={client_id}&exp={exp}&kid={kid}&sig={sig}")
}

/// The client's generation as it reads it, once `pred` holds.
async fn generation_when(client: &TestClient, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = client.history().await.into_iter().find(|g| g["id"] == id);
        if let Some(g) = found.filter(|g| pred(g)) {
            return g;
        }
        assert!(Instant::now() < deadline, "generation {id} never matched; history: {:?}", client.history().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the image of `id` is in our bucket; returns the generation.
pub async fn stored(client: &TestClient, id: &str) -> Value {
    generation_when(client, id, |g| g["image_status"] == "stored").await
}

/// FAL's URL for a generation's image, as operators see it.
pub async fn fal_url_of(admin: &Admin, client_id: &str, generation_id: &str) -> String {
    let page = admin.get(&format!("/admin/generations?client_id={client_id}&limit=100")).expect(200).await;
    let row = page["data"].as_array().unwrap().iter().find(|g| g["id"] == generation_id).expect("the admin list shows it").clone();
    row["fal_image_url"].as_str().expect("FAL's URL is kept for operators").to_string()
}

/// Asserts that `url` is ours and, once the copy is stored, serves from our
/// bucket exactly the bytes of the emulator's file.
pub async fn assert_serves_fals_bytes(admin: &Admin, client: &TestClient, generation_id: &str, url: &str) {
    assert!(url.starts_with(&format!("{}/v1/results/{generation_id}?", client.api.base)), "our URL, not FAL's: {url}");
    stored(client, generation_id).await;
    let ours = get(url, &[]).await;
    assert_eq!(ours.status(), 200, "served by the worker itself, not a redirect");
    let ours = ours.bytes().await.unwrap();
    let fal = reqwest::get(fal_url_of(admin, &client.id, generation_id).await).await.unwrap().bytes().await.unwrap();
    assert!(fal.starts_with(b"\x89PNG"));
    assert_eq!(ours, fal, "the same bytes as FAL's file");
}

#[tokio::test]
async fn a_sync_generation_links_our_url_which_serves_the_emulators_png_with_caching_headers() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let m = marker();
    let reply = client.generate(&try_on(&m)).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let url = reply["image_url"].as_str().unwrap();
    assert_eq!(reply["image"]["url"], url, "the image object carries our URL too");
    assert_serves_fals_bytes(&admin, &client, id, url).await;

    let served = get(url, &[]).await;
    let header = |name: &str| served.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(header("content-disposition"), Some(format!("inline; filename=\"{id}.png\"")));
    assert_eq!(header("cross-origin-resource-policy").as_deref(), Some("cross-origin"), "shop pages on other origins may embed it");
    let cache = header("cache-control").unwrap();
    assert!(cache.starts_with("private, max-age=") && cache != "private, max-age=0", "{cache}");
    let etag = header("etag").expect("an entity tag");
    let length: usize = header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, served.bytes().await.unwrap().len());
    let history = stored(&client, id).await;
    assert_eq!(history["image_bytes"], length, "the row records the size");
    assert_eq!(history["image_content_type"], "image/png");

    let again = get(url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    assert_eq!(get(url, &[("if-none-match", "\"something-else\"")]).await.status(), 200);

    // FAL is asked to keep its copy only as long as ours needs it.
    let sent = stack::emulator().requests_matching(&m);
    assert_eq!(sent[0].lifecycle.as_deref(), Some(r#"{"expiration_duration_seconds":86400}"#));
}

#[tokio::test]
async fn a_jobs_image_is_ours_in_its_view_and_serves_the_emulators_png() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let m = marker();
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["image_url"], Value::Null);
    let deadline = Instant::now() + Duration::from_secs(15);
    let done = loop {
        let read = client.get(&format!("/api/jobs/{id}")).expect(200).await;
        if read["status"] == "done" {
            break read;
        }
        assert!(Instant::now() < deadline, "the job never finished: {read}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let generation_id = done["generation_id"].as_str().unwrap();
    assert_serves_fals_bytes(&admin, &client, generation_id, done["image_url"].as_str().unwrap()).await;
    assert_eq!(stack::emulator().requests_matching(&m)[0].lifecycle.as_deref(), Some(r#"{"expiration_duration_seconds":86400}"#));
}

#[tokio::test]
async fn edited_or_expired_urls_are_refused_and_unknown_images_are_not_found() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let reply = client.generate(&try_on(&marker())).expect(200).await;
    let (id, url) = (reply["generation_id"].as_str().unwrap(), reply["image_url"].as_str().unwrap());
    stored(&client, id).await;
    let other = admin.new_client().await;

    let sig = reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "sig").unwrap().1.into_owned();
    let flipped = format!("{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
    let in_eight_days = (now_ms() + 8 * DAY_MS).to_string();
    let cases = [
        (with_param(url, "sig", &flipped), None, 403, "invalid_result_url"),
        (with_param(url, "exp", "99999999999"), None, 403, "invalid_result_url"),
        (with_param(url, "client", &other.id), None, 403, "invalid_result_url"),
        (url.replace(id, "gen_aaaaaaaaaaaaaaaaaaaa"), None, 403, "invalid_result_url"),
        (url.split('?').next().unwrap().to_string(), None, 403, "invalid_result_url"),
        (url.to_string(), Some(in_eight_days.as_str()), 403, "result_url_expired"),
        // A genuine signature for an image that does not exist.
        (signed_url(&client.api.base, &client.id, "gen_zzzzzzzzzzzzzzzzzzzz", now_ms() / 1000 + 3600), None, 404, "not_found"),
    ];
    for (url, at, status, code) in cases {
        let headers: Vec<(&str, &str)> = at.map(|t| vec![("x-test-now", t)]).unwrap_or_default();
        let response = get(&url, &headers).await;
        assert_eq!(response.status(), status, "{url}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], code, "{url}");
    }
    // The original still works.
    assert_eq!(get(url, &[]).await.status(), 200);
}

#[tokio::test]
async fn history_and_job_reads_mint_fresh_urls_that_all_work() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let reply = client.generate(&try_on(&marker())).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let read = stored(&client, id).await;
    let later = client.get("/api/generations").header("x-test-now", &(now_ms() + 2 * DAY_MS).to_string()).expect(200).await;
    let minted_later = later["data"][0]["image_url"].as_str().unwrap().to_string();
    let exp = |u: &str| reqwest::Url::parse(u).unwrap().query_pairs().find(|(k, _)| k == "exp").unwrap().1.parse::<u64>().unwrap();
    assert!(exp(&minted_later) > exp(read["image_url"].as_str().unwrap()) + 86_000, "a later read gets a later expiry");
    for url in [read["image_url"].as_str().unwrap(), &minted_later] {
        assert_eq!(get(url, &[]).await.status(), 200);
    }
}

#[tokio::test]
async fn outputs_that_are_not_images_or_too_large_fail_the_generation_and_cost_nothing() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let html = marker();
    inject(&html, FaultMode::NonImageResult);
    let reply = client.generate(&try_on(&html)).send().await;
    reply.assert_error(502, "upstream_malformed_response");
    assert!(reply.text.contains("not a PNG, JPEG or WebP image"), "{}", reply.text);

    let huge = marker();
    inject(&huge, FaultMode::HugeResult); // 30 MiB, over the 25 MiB cap
    let started = Instant::now();
    let reply = client.generate(&try_on(&huge)).send().await;
    reply.assert_error(502, "upstream_malformed_response");
    assert!(reply.text.contains("31457280 bytes"), "{}", reply.text);
    assert!(started.elapsed() < Duration::from_secs(5), "refused by its Content-Length, not downloaded");

    let queued = marker();
    inject(&queued, FaultMode::NonImageResult);
    let job = client.post("/api/jobs").json(&try_on(&queued)).expect(202).await;
    let id = job["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let ended = loop {
        let read = client.get(&format!("/api/jobs/{id}")).expect(200).await;
        if read["status"] != "queued" && read["status"] != "processing" {
            break read;
        }
        assert!(Instant::now() < deadline, "{read}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended["status"], "error", "{ended}");
    assert_eq!(ended["image_url"], Value::Null);
    assert!(ended["error"].as_str().unwrap().contains("not a PNG"), "{ended}");

    let history = client.history().await;
    assert_eq!(history.len(), 3);
    for g in &history {
        assert_eq!((g["status"].as_str(), &g["image_url"], &g["image_status"]), (Some("error"), &Value::Null, &Value::Null), "{g}");
    }
    assert_eq!(client.wait_until_settled().await["used"], 0, "refused outputs are not charged");
}

#[tokio::test]
async fn a_large_image_streams_into_the_bucket_and_out_whole() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let m = marker();
    const SIZE: u64 = 12_000_000;
    stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::HugeResult, delay_ms: SIZE, times: None });
    let reply = client.generate(&try_on(&m)).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let row = stored(&client, id).await;
    assert_eq!(row["image_bytes"], SIZE);
    let served = get(reply["image_url"].as_str().unwrap(), &[]).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-length"], SIZE.to_string().as_str());
    let bytes = served.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, SIZE);
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
}

/// A file served without `Content-Length` (a CDN compressing on the fly)
/// has no size until it has all arrived: the worker reads it whole, up to
/// `MAX_RESULT_BYTES`, before it answers. Exactly the cap is kept and served
/// whole; one byte more fails the generation, recorded and not charged.
#[tokio::test]
async fn a_result_file_without_a_content_length_is_read_whole_up_to_the_cap() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    const CAP: u64 = tryon_edge::config::DEFAULT_MAX_RESULT_BYTES;
    let (at_cap, over) = (marker(), marker());
    stack::emulator().add_fault(Fault { pattern: at_cap.clone(), mode: FaultMode::ChunkedResult, delay_ms: CAP, times: None });
    stack::emulator().add_fault(Fault { pattern: over.clone(), mode: FaultMode::ChunkedResult, delay_ms: CAP + 1, times: None });

    let reply = client.generate(&try_on(&at_cap)).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let fal = fal_url_of(&admin, &client.id, id).await;
    let source = reqwest::get(&fal).await.unwrap();
    assert!(source.headers().get("content-length").is_none(), "the emulator sends FAL's file chunked: {:?}", source.headers());
    drop(source);
    assert_eq!(stored(&client, id).await["image_bytes"], CAP);
    let served = get(reply["image_url"].as_str().unwrap(), &[]).await;
    assert_eq!(served.headers()["content-length"], CAP.to_string().as_str(), "our copy declares its size");
    assert_serves_fals_bytes(&admin, &client, id, reply["image_url"].as_str().unwrap()).await;

    let refused = client.generate(&try_on(&over)).send().await;
    refused.assert_error(502, "upstream_malformed_response");
    assert!(refused.text.contains(&format!("more than the {CAP}-byte limit")), "{}", refused.text);
    let history = client.history().await;
    assert_eq!(history.len(), 2);
    let failed = history.iter().find(|g| g["id"] != id).unwrap();
    assert_eq!((failed["status"].as_str(), &failed["image_url"]), (Some("error"), &Value::Null), "{failed}");
    assert_eq!(client.wait_until_settled().await["used"], 1, "only the kept image is charged");
}

async fn run_cron(api: &Api, at_ms: u64) {
    let reply = api.get(&format!("/cdn-cgi/handler/scheduled?cron=17+*+*+*+*&time={at_ms}")).send().await;
    assert!(reply.status < 300, "scheduled handler failed: {} {}", reply.status, reply.text);
}

#[tokio::test]
async fn a_file_fal_cannot_serve_leaves_the_generation_usable_and_marked_until_the_cron_copies_it() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    let admin = api.login().await;
    let client = admin.new_client().await;
    let (comes_back, never) = (marker(), marker());
    inject(&comes_back, FaultMode::ResultGone);
    inject(&never, FaultMode::ResultGone);

    let reply = client.generate(&try_on(&comes_back)).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let url = reply["image_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/v1/results/{id}?", api.base)), "{url}");
    let row = generation_when(&client, id, |g| g["image_status"] == "pending").await;
    assert_eq!(row["status"], "success");
    assert_eq!(client.wait_until_settled().await["used"], 1, "the generation succeeded and is charged");
    let fal_url = fal_url_of(&admin, &client.id, id).await;
    let page = admin.get(&format!("/admin/generations?client_id={}", client.id)).expect(200).await;
    assert!(page["data"][0]["image_error"].as_str().unwrap().contains("HTTP 404"), "{page}");
    // Meanwhile our URL sends the reader to FAL's copy.
    let redirected = get(url, &[]).await;
    assert_eq!(redirected.status(), 302);
    assert_eq!(redirected.headers()["location"], fal_url.as_str());

    // FAL serves the file again; the next cron run copies it.
    let png = reqwest::get(format!("{}/samples/person.png", stack::emulator().url())).await.unwrap().bytes().await.unwrap();
    assert!(stack::emulator().restore_file(&fal_url, png.to_vec()));
    let lost = client.generate(&try_on(&never)).expect(200).await;
    run_cron(&api, now_ms() + 5 * 60 * 1000).await;
    stored(&client, id).await;
    let served = get(url, &[]).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), png);

    // A file that never comes back is given up once FAL's copy has expired.
    let lost_id = lost["generation_id"].as_str().unwrap();
    run_cron(&api, now_ms() + 2 * DAY_MS).await;
    let given_up = generation_when(&client, lost_id, |g| g["image_status"] == "failed").await;
    assert_eq!(given_up["image_url"], Value::Null);
    let gone = get(lost["image_url"].as_str().unwrap(), &[]).await;
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.json::<Value>().await.unwrap()["error"]["code"], "result_unavailable");
}

#[tokio::test]
async fn retention_deletes_images_in_the_cron_and_their_urls_answer_410_or_404() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    let admin = api.login().await;
    let short = admin.new_client().await;
    let path = format!("/admin/clients/{}", short.id);
    for (days, code) in [(json!(0), "invalid_retention"), (json!(397), "invalid_retention")] {
        admin.patch(&path).json(&json!({ "retention_days": days })).send().await.assert_error(422, code);
    }
    assert_eq!(admin.patch(&path).json(&json!({ "retention_days": 30 })).expect(200).await["retention_days"], 30);
    let default = admin.new_client().await;
    assert_eq!(default.created["client"]["retention_days"], Value::Null);

    let now = now_ms();
    let forty_days_ago = (now - 40 * DAY_MS).to_string();
    let fourteen_months_ago = (now - 425 * DAY_MS).to_string();
    let old_short = short.generate(&try_on(&marker())).header("x-test-now", &forty_days_ago).expect(200).await;
    let recent_short = short.generate(&try_on(&marker())).expect(200).await;
    let kept_default = default.generate(&try_on(&marker())).header("x-test-now", &forty_days_ago).expect(200).await;
    let old_default = default.generate(&try_on(&marker())).header("x-test-now", &fourteen_months_ago).expect(200).await;
    let id = |g: &Value| g["generation_id"].as_str().unwrap().to_string();
    // URLs minted now (those of the old generations were minted in the past, and have expired).
    let mut urls = std::collections::HashMap::new();
    for (client, g) in [(&short, &old_short), (&short, &recent_short), (&default, &kept_default), (&default, &old_default)] {
        urls.insert(id(g), stored(client, &id(g)).await["image_url"].as_str().unwrap().to_string());
    }
    for url in urls.values() {
        assert_eq!(get(url, &[]).await.status(), 200);
    }

    run_cron(&api, now).await;

    // The short-retention client's old image is gone; its row stays, saying so.
    let row = generation_when(&short, &id(&old_short), |g| g["image_status"] == "deleted").await;
    assert_eq!(row["image_url"], Value::Null);
    let gone = get(&urls[&id(&old_short)], &[]).await;
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.json::<Value>().await.unwrap()["error"]["code"], "result_expired");
    // Past RETENTION_DAYS the image and then the row are deleted: unknown.
    let unknown = get(&urls[&id(&old_default)], &[]).await;
    assert_eq!(unknown.status(), 404);
    assert!(default.history().await.iter().all(|g| g["id"] != id(&old_default).as_str()));
    // Everything younger than its retention is untouched.
    assert_eq!(get(&urls[&id(&recent_short)], &[]).await.status(), 200);
    assert_eq!(get(&urls[&id(&kept_default)], &[]).await.status(), 200);
}

#[tokio::test]
async fn deleting_a_client_erases_its_keys_generations_and_images_but_not_its_invoice() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let mut urls = Vec::new();
    for _ in 0..2 {
        let g = client.generate(&try_on(&marker())).expect(200).await;
        stored(&client, g["generation_id"].as_str().unwrap()).await;
        urls.push(g["image_url"].as_str().unwrap().to_string());
    }
    let path = format!("/admin/clients/{}", client.id);
    let deleted = admin.delete(&path).expect(200).await;
    assert_eq!(deleted["erasure"], json!({ "images_deleted": 2, "generations_deleted": 2, "complete": true }));

    client.get("/api/generations").send().await.assert_error(401, "invalid_api_key");
    for url in &urls {
        assert_eq!(get(url, &[]).await.status(), 404, "its images are gone");
    }
    admin.get(&path).send().await.assert_error(404, "not_found");
    let listed = crate::support::api::all_pages(|cursor| admin.get(&format!("/admin/clients?limit=100&cursor={cursor}"))).await;
    assert!(listed.iter().all(|c| c["id"] != client.id.as_str()), "no longer listed");
    let usage = admin.get("/admin/usage").expect(200).await;
    let billed = usage["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == client.id.as_str()).expect("still invoiced").clone();
    assert_eq!((billed["successful_generations"].as_u64(), billed["active"].as_bool()), (Some(2), Some(false)));
    // Deleting again resumes (here: confirms) the erasure.
    assert_eq!(admin.delete(&path).expect(200).await["erasure"]["complete"], true);
    admin.delete("/admin/clients/cl_0000000000000000").send().await.assert_error(404, "not_found");
}

#[tokio::test]
async fn without_signing_keys_everything_else_works_and_views_link_fals_url() {
    let own = stack::start(StackOptions { vars: vec![("SIGNING_KEYS".into(), String::new())], ..StackOptions::default() });
    let api = Api::new(&own);
    let admin = api.login().await;
    let client = admin.new_client().await;
    let reply = client.generate(&try_on(&marker())).expect(200).await;
    let id = reply["generation_id"].as_str().unwrap();
    let fal_url = reply["image_url"].as_str().unwrap();
    assert!(fal_url.starts_with(&format!("{}/files/", stack::emulator().url())), "FAL's URL: {fal_url}");
    // The copy is still kept, for when keys are configured.
    assert_eq!(stored(&client, id).await["image_url"], fal_url);
    // Nothing was signed, so nothing verifies.
    let forged = signed_url(&api.base, &client.id, id, now_ms() / 1000 + 3600);
    assert_eq!(get(&forged, &[]).await.status(), 404);
    // Nor can widget session tokens be signed.
    let shop = admin.create_client(serde_json::json!({ "name": format!("Shop {}", marker()), "allowed_origins": ["https://shop.example"] })).await;
    shop.post("/api/widget-sessions").json(&serde_json::json!({ "origin": "https://shop.example" })).send().await.assert_error(503, "service_unavailable");
}

/// `MAX_RESULT_BYTES` sets the cap on FAL's output: exactly the cap is
/// stored, one byte more fails the generation (README "Result images").
#[tokio::test]
async fn max_result_bytes_admits_an_output_of_exactly_the_cap_and_not_one_byte_more() {
    const CAP: u64 = 1_000_000;
    let own = stack::start(StackOptions::default().var("MAX_RESULT_BYTES", CAP));
    let client = Api::new(&own).login().await.new_client().await;
    let (at, over) = (marker(), marker());
    stack::emulator().add_fault(Fault { pattern: at.clone(), mode: FaultMode::HugeResult, delay_ms: CAP, times: None });
    stack::emulator().add_fault(Fault { pattern: over.clone(), mode: FaultMode::HugeResult, delay_ms: CAP + 1, times: None });
    let kept = client.generate(&try_on(&at)).expect(200).await;
    let row = stored(&client, kept["generation_id"].as_str().unwrap()).await;
    assert_eq!(row["image_bytes"], CAP);
    let reply = client.generate(&try_on(&over)).send().await;
    reply.assert_error(502, "upstream_malformed_response");
    assert!(reply.text.contains(&format!("{} bytes", CAP + 1)) && reply.text.contains(&CAP.to_string()), "{}", reply.text);
    let usage = client.wait_until_settled().await;
    assert_eq!(usage["used"], 1, "only the output within the cap is charged: {usage}");
}

/// README "Erasure": one `DELETE /admin/clients/{id}` erases up to 5,000
/// rows and says `"complete": false` when more are left; the cron finishes,
/// and asking again then finds nothing left.
#[tokio::test]
async fn deleting_a_client_with_more_rows_than_one_request_erases_is_finished_by_the_cron() {
    let first = stack::start(StackOptions::default());
    let client = Api::new(&first).login().await.new_client().await;
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap().to_string();
    stored(&client, &id).await;
    // 6,000 more rows of this client, copies of the first with their own ids
    // (D1 allows no temporary tables: two scratch tables, dropped after).
    let state_dir = first.stop();
    d1_execute(
        &state_dir,
        &format!(
            "CREATE TABLE test_seq (i INTEGER);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 6000) INSERT INTO test_seq SELECT i FROM c;
             CREATE TABLE test_copies AS SELECT g.*, test_seq.i AS k FROM generations g, test_seq WHERE g.id = '{id}';
             UPDATE test_copies SET id = id || '_' || k;
             ALTER TABLE test_copies DROP COLUMN k;
             INSERT INTO generations SELECT * FROM test_copies;
             DROP TABLE test_copies;
             DROP TABLE test_seq;"
        ),
    );
    let second = stack::start(StackOptions { state_dir: Some(state_dir), ..Default::default() });
    let api = Api::new(&second);
    let admin = api.login().await;
    let client = TestClient { api: Api::new(&second), ..client };
    assert_eq!(client.history().await.len(), 6001);

    let deleted = admin.delete(&format!("/admin/clients/{}", client.id)).expect(200).await;
    assert_eq!(deleted["erasure"]["generations_deleted"], 5000, "{deleted}");
    assert_eq!(deleted["erasure"]["complete"], false, "{deleted}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    run_cron(&api, now).await;
    let again = admin.delete(&format!("/admin/clients/{}", client.id)).expect(200).await;
    assert_eq!(
        (again["erasure"]["generations_deleted"].as_u64(), again["erasure"]["complete"].as_bool()),
        (Some(0), Some(true)),
        "the cron erased the 1,001 rows left: {again}"
    );
}

/// README "Erasure": the cron sweeps a deleted client once more for a day
/// after its erasure was found complete, for jobs that were still running
/// at FAL: a job that ends after the deletion leaves a row (and an image),
/// and the next cron within the day erases them.
#[tokio::test]
async fn a_job_that_ends_after_its_client_was_erased_is_swept_by_the_next_cron() {
    let own = stack::start(StackOptions::default());
    let api = Api::new(&own);
    let admin = api.login().await;
    let client = admin.new_client().await;
    let m = marker();
    stack::emulator().add_fault(Fault { pattern: m.clone(), mode: FaultMode::Slow, delay_ms: 3_000, times: None });
    let job = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;
    let generation = format!("gen_{}", job["id"].as_str().unwrap().trim_start_matches("job_"));
    let deleted = admin.delete(&format!("/admin/clients/{}", client.id)).expect(200).await;
    assert_eq!(deleted["erasure"]["complete"], true, "nothing recorded yet: {deleted}");

    // FAL's webhook ends the job after the deletion: its row is recorded.
    let rows = format!("/admin/generations?client_id={}&limit=100", client.id);
    crate::support::wait_until("the late job's row", Duration::from_secs(20), || async {
        let page = admin.get(&rows).expect(200).await;
        if page["data"].as_array().unwrap().iter().any(|g| g["id"] == generation.as_str()) { Ok(()) } else { Err(page.to_string()) }
    })
    .await;

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    run_cron(&api, now + 3_600_000).await;
    let page = admin.get(&rows).expect(200).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 0, "the sweep within the day erased it: {page}");
}
