//! Credentials a browser may hold: publishable keys (with the shopper's
//! anonymous id) and widget session tokens. Their scope, their own limits,
//! the shopper's history, and the shopper's erasure.

use crate::support::api::Call;
use crate::support::{marker, try_on, Admin, Api, TestClient};
use reqwest::Method;
use serde_json::{json, Value};

const SHOP: &str = "https://shop.example";
const OTHER_PAGE: &str = "https://other.shop.example";

/// A shop whose pages are `SHOP` and `OTHER_PAGE`, with a publishable key.
async fn shop(extra: Value) -> (Admin, TestClient, String) {
    let admin = Api::shared().login().await;
    let mut body = json!({ "name": format!("Widget shop {}", marker()), "allowed_origins": [SHOP, OTHER_PAGE] });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let client = admin.create_client(body).await;
    let created = admin.post(&format!("/admin/clients/{}/keys", client.id)).json(&json!({ "kind": "publishable" })).expect(201).await;
    let pk = created["api_key"].as_str().unwrap().to_string();
    assert!(pk.starts_with("vto_pk_"), "{pk}");
    (admin, client, pk)
}

fn anonymous_shopper() -> String {
    let m = marker().replace(|c: char| !c.is_ascii_alphanumeric(), "");
    format!("anon_{:0<22}", m).chars().take(5 + 40).collect()
}

/// A request as the widget on `origin` makes it, with a publishable key.
fn as_widget<'a>(api: &'a Api, method: Method, path: &str, pk: &str, shopper: &str, origin: &str) -> Call<'a> {
    api.call(method, path).header("x-api-key", pk).header("x-tryon-shopper", shopper).header("origin", origin)
}

fn as_token<'a>(api: &'a Api, method: Method, path: &str, token: &str, origin: &str) -> Call<'a> {
    api.call(method, path).header("authorization", &format!("Bearer {token}")).header("origin", origin)
}

#[tokio::test]
async fn a_publishable_key_works_only_from_allowed_pages_and_only_for_try_ons() {
    let (admin, client, pk) = shop(json!({})).await;
    let api = Api::shared();
    let shopper = anonymous_shopper();
    let body = try_on(&marker());
    // No Origin (a server, a script): refused.
    api.post("/api/jobs").header("x-api-key", &pk).header("x-tryon-shopper", &shopper).json(&body).send().await.assert_error(403, "origin_required");
    // A page the shop does not own: refused, and the browser is not allowed to read why.
    let foreign = as_widget(&api, Method::POST, "/api/jobs", &pk, &shopper, "https://evil.example").json(&body).send().await;
    foreign.assert_error(403, "origin_not_allowed");
    assert!(foreign.header("access-control-allow-origin").is_none());
    // No shopper id: refused.
    api.post("/api/jobs").header("x-api-key", &pk).header("origin", SHOP).json(&body).send().await.assert_error(400, "missing_shopper_id");
    // Everything but trying on and following its own try-ons: refused.
    for (method, path) in [(Method::GET, "/api/generations"), (Method::GET, "/api/usage"), (Method::POST, "/api/widget-sessions"), (Method::DELETE, "/api/shoppers/someone")] {
        as_widget(&api, method, path, &pk, &shopper, SHOP).json(&json!({ "origin": SHOP })).send().await.assert_error(403, "secret_key_required");
    }
    api.get("/admin/clients").header("x-api-key", &pk).send().await.assert_error(401, "not_logged_in");
    // None of that cost anything.
    let usage = client.get("/api/usage").expect(200).await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64(), usage["rate_limit_per_minute"].as_u64()), (Some(0), Some(0), Some(60)));
    assert!(client.history().await.is_empty());
    // From the shop's page, with the shopper's id: a job, for that shopper.
    let job = as_widget(&api, Method::POST, "/api/jobs", &pk, &shopper, SHOP).json(&body).send().await;
    assert_eq!(job.status, 202, "{}", job.text);
    assert_eq!(job.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(job.body["shopper_id"], shopper.as_str());
    // A revoked publishable key stops at once.
    let keys = admin.get(&format!("/admin/clients/{}", client.id)).expect(200).await;
    let key = keys["keys"].as_array().unwrap().iter().find(|k| k["kind"] == "publishable").unwrap().clone();
    assert_eq!(key["key"], pk.as_str(), "publishable keys are shown whole");
    admin.delete(&format!("/admin/clients/{}/keys/{}", client.id, key["id"].as_str().unwrap())).expect(200).await;
    as_widget(&api, Method::POST, "/api/jobs", &pk, &shopper, SHOP).json(&body).send().await.assert_error(401, "invalid_api_key");
}

#[tokio::test]
async fn one_shopper_cannot_use_up_the_shop_concurrent_requests_get_exactly_their_rate() {
    let (_, client, pk) = shop(json!({ "shopper_rate_limit_per_minute": 2, "widget_rate_limit_per_minute": 100, "max_concurrent": 20 })).await;
    let api = Api::shared();
    let greedy = anonymous_shopper();
    let tries: Vec<_> = (0..6)
        .map(|_| {
            let (api, pk, greedy) = (api.clone(), pk.clone(), greedy.clone());
            tokio::spawn(async move { as_widget(&api, Method::POST, "/api/images/generate", &pk, &greedy, SHOP).json(&try_on(&marker())).send().await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        let reply = t.await.unwrap();
        if reply.status == 429 {
            reply.assert_error(429, "shopper_rate_limited");
            assert!(reply.header("retry-after").is_some());
        }
        statuses.push(reply.status);
    }
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 429, 429, 429, 429]);
    // Another shopper on the same page is not affected, nor is the shop's server.
    assert_eq!(as_widget(&api, Method::POST, "/api/images/generate", &pk, &anonymous_shopper(), SHOP).json(&try_on(&marker())).send().await.status, 200);
    client.generate(&try_on(&marker())).expect(200).await;
    assert_eq!(client.wait_until_settled().await["used"], 4, "refusals cost nothing");
}

#[tokio::test]
async fn the_widget_rate_is_shared_by_every_shopper_of_the_shop_and_spares_its_server() {
    let (_, client, pk) = shop(json!({ "widget_rate_limit_per_minute": 2, "shopper_rate_limit_per_minute": 100 })).await;
    let api = Api::shared();
    let now = "1800000000000";
    let try_as = |shopper: String| {
        let (api, pk) = (api.clone(), pk.clone());
        async move { as_widget(&api, Method::POST, "/api/images/generate", &pk, &shopper, SHOP).header("x-test-now", now).json(&try_on(&marker())).send().await }
    };
    for _ in 0..2 {
        let admitted = try_as(anonymous_shopper()).await;
        assert_eq!(admitted.status, 200, "{}", admitted.text);
    }
    // A third shopper, who has tried nothing yet: the shop's pages have had their two.
    let refused = try_as(anonymous_shopper()).await;
    refused.assert_error(429, "widget_rate_limited");
    assert_eq!(refused.header("retry-after"), Some("30"), "one try-on comes back every 30 s");
    // The shop's own server has its own rate.
    client.generate(&try_on(&marker())).header("x-test-now", now).expect(200).await;
    let usage = client.wait_for_usage_at(1_800_000_000_000, "every try-on settled", |u| u["in_progress"] == 0).await;
    assert_eq!(usage["used"], 3, "the refusal cost nothing");
}

#[tokio::test]
async fn a_shoppers_daily_cap_holds_until_midnight_utc() {
    let (_, _, pk) = shop(json!({ "shopper_daily_limit": 2, "shopper_rate_limit_per_minute": 100 })).await;
    let api = Api::shared();
    let shopper = anonymous_shopper();
    let noon = "1800000000000"; // 2027-01-15T08:00:00Z
    for _ in 0..2 {
        as_widget(&api, Method::POST, "/api/images/generate", &pk, &shopper, SHOP).header("x-test-now", noon).json(&try_on(&marker())).expect(200).await;
    }
    let capped = as_widget(&api, Method::POST, "/api/images/generate", &pk, &shopper, SHOP).header("x-test-now", noon).json(&try_on(&marker())).send().await;
    capped.assert_error(429, "shopper_daily_limit");
    assert_eq!(capped.header("retry-after"), Some(((86_400_000 - 1_800_000_000_000u64 % 86_400_000) / 1000).to_string().as_str()));
    let tomorrow = (1_800_000_000_000u64 - 1_800_000_000_000 % 86_400_000 + 86_400_000).to_string();
    as_widget(&api, Method::POST, "/api/images/generate", &pk, &shopper, SHOP).header("x-test-now", &tomorrow).json(&try_on(&marker())).expect(200).await;
}

async fn mint(client: &TestClient, body: Value) -> crate::support::Reply {
    client.post("/api/widget-sessions").json(&body).send().await
}

#[tokio::test]
async fn widget_tokens_are_bound_to_their_client_origin_shopper_and_hour() {
    let (_, client, _) = shop(json!({})).await;
    let (_, other_client, _) = shop(json!({})).await;
    let api = Api::shared();
    mint(&client, json!({ "origin": "https://evil.example" })).await.assert_error(403, "origin_not_allowed");
    mint(&client, json!({ "origin": SHOP, "ttl_seconds": 3601 })).await.assert_error(422, "invalid_ttl");
    let minted = mint(&client, json!({ "origin": SHOP, "shopper_id": "cust-1", "ttl_seconds": 600 })).await;
    assert_eq!(minted.status, 201, "{}", minted.text);
    let token = minted.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("vto_wt_"));
    assert_eq!(minted.body["shopper_id"], "cust-1");

    // Valid: a job for cust-1, readable with the token.
    let job = as_token(&api, Method::POST, "/api/jobs", &token, SHOP).json(&try_on(&marker())).send().await;
    assert_eq!(job.status, 202, "{}", job.text);
    assert_eq!(job.body["shopper_id"], "cust-1");
    let id = job.body["id"].as_str().unwrap().to_string();
    as_token(&api, Method::GET, &format!("/api/jobs/{id}"), &token, SHOP).expect(200).await;
    // A body may not name another shopper.
    let mut naming = try_on(&marker());
    naming["shopper_id"] = json!("cust-2");
    as_token(&api, Method::POST, "/api/jobs", &token, SHOP).json(&naming).send().await.assert_error(422, "shopper_id_not_allowed");
    // Expired: an hour's token past its ten minutes.
    let later = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64 + 601_000).to_string();
    as_token(&api, Method::GET, &format!("/api/jobs/{id}"), &token, SHOP).header("x-test-now", &later).send().await.assert_error(401, "widget_token_expired");
    // Tampered: another shopper written into it.
    let (payload, rest) = token.split_once('.').unwrap();
    let mut bytes = payload.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{rest}", String::from_utf8(bytes).unwrap());
    as_token(&api, Method::GET, &format!("/api/jobs/{id}"), &tampered, SHOP).send().await.assert_error(401, "invalid_widget_token");
    // Wrong origin, even one the shop owns: tokens are for the page they were minted for.
    as_token(&api, Method::GET, &format!("/api/jobs/{id}"), &token, OTHER_PAGE).send().await.assert_error(401, "widget_token_origin_mismatch");
    // Wrong client: another shop's token sees nothing of this shop's jobs.
    let theirs = mint(&other_client, json!({ "origin": SHOP, "shopper_id": "cust-1" })).await.body["token"].as_str().unwrap().to_string();
    as_token(&api, Method::GET, &format!("/api/jobs/{id}"), &theirs, SHOP).send().await.assert_error(404, "not_found");
    // And a token is no secret key.
    as_token(&api, Method::GET, "/api/generations", &token, SHOP).send().await.assert_error(403, "secret_key_required");
}

#[tokio::test]
async fn widget_sessions_last_900_seconds_unless_asked_for_60_to_3600() {
    let (_, client, _) = shop(json!({})).await;
    let now = "1800000000000"; // 2027-01-15T08:00:00Z
    let at_now = |body: Value| client.post("/api/widget-sessions").header("x-test-now", now).json(&body).send();
    let expires = |reply: crate::support::Reply| {
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["expires_at"].as_str().unwrap().to_string()
    };
    assert_eq!(expires(at_now(json!({ "origin": SHOP })).await), "2027-01-15T08:15:00.000Z");
    assert_eq!(expires(at_now(json!({ "origin": SHOP, "ttl_seconds": 60 })).await), "2027-01-15T08:01:00.000Z");
    assert_eq!(expires(at_now(json!({ "origin": SHOP, "ttl_seconds": 3600 })).await), "2027-01-15T09:00:00.000Z");
    for outside in [59, 3601] {
        at_now(json!({ "origin": SHOP, "ttl_seconds": outside })).await.assert_error(422, "invalid_ttl");
    }
}

#[tokio::test]
async fn a_widget_session_naming_no_shopper_is_for_a_fresh_anonymous_one() {
    let (_, client, _) = shop(json!({})).await;
    let api = Api::shared();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let minted = mint(&client, json!({ "origin": SHOP })).await;
        assert_eq!(minted.status, 201, "{}", minted.text);
        let shopper = minted.body["shopper_id"].as_str().unwrap().to_string();
        let id = shopper.strip_prefix("anon_").unwrap_or_else(|| panic!("an anonymous shopper: {shopper}"));
        assert!(id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{shopper}");
        // The token acts as that shopper.
        let token = minted.body["token"].as_str().unwrap();
        let job = as_token(&api, Method::POST, "/api/jobs", token, SHOP).json(&try_on(&marker())).expect(202).await;
        assert_eq!(job["shopper_id"], shopper.as_str());
        seen.push(shopper);
    }
    assert_ne!(seen[0], seen[1], "each session a new shopper");
}

#[tokio::test]
async fn a_shopper_sees_and_touches_only_their_own_generations() {
    let (_, client, pk) = shop(json!({})).await;
    let api = Api::shared();
    let (alice, bob) = (anonymous_shopper(), anonymous_shopper());
    for _ in 0..2 {
        as_widget(&api, Method::POST, "/api/images/generate", &pk, &alice, SHOP).json(&try_on(&marker())).expect(200).await;
    }
    as_widget(&api, Method::POST, "/api/images/generate", &pk, &bob, SHOP).json(&try_on(&marker())).expect(200).await;
    let bobs_job = as_widget(&api, Method::POST, "/api/jobs", &pk, &bob, SHOP).json(&try_on(&marker())).expect(202).await;
    let bobs_job = bobs_job["id"].as_str().unwrap().to_string();
    client.generate(&try_on(&marker())).expect(200).await; // the shop's own, for no shopper

    let mine = as_widget(&api, Method::GET, "/api/shoppers/me/generations", &pk, &alice, SHOP).expect(200).await;
    let rows = mine["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|g| g["shopper_id"] == alice.as_str()));
    for (method, path) in [(Method::GET, format!("/api/jobs/{bobs_job}")), (Method::DELETE, format!("/api/jobs/{bobs_job}")), (Method::GET, format!("/api/jobs/{bobs_job}/events"))] {
        as_widget(&api, method, &path, &pk, &alice, SHOP).send().await.assert_error(404, "not_found");
    }
    // Bob follows his own job to its end (its generation row appears then).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while as_widget(&api, Method::GET, &format!("/api/jobs/{bobs_job}"), &pk, &bob, SHOP).expect(200).await["status"] != "done" {
        assert!(std::time::Instant::now() < deadline, "bob's job never finished");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The shop's server reads any shopper's history, and everyone's.
    let bobs = client.get(&format!("/api/generations?shopper_id={bob}")).expect(200).await;
    assert!(bobs["data"].as_array().unwrap().iter().all(|g| g["shopper_id"] == bob.as_str()));
    assert_eq!(client.history().await.len(), 5);
    client.get("/api/shoppers/me/generations").send().await.assert_error(403, "widget_credential_required");
}

#[tokio::test]
async fn erasing_a_shopper_removes_their_images_and_personal_fields_and_keeps_the_usage() {
    let (_, client, pk) = shop(json!({})).await;
    let api = Api::shared();
    let mut body = try_on(&marker());
    body["shopper_id"] = json!("cust/9 é");
    body["metadata"] = json!({ "product": "sku-1", "email_hash": "abc" });
    let made = client.generate(&body).expect(200).await;
    client.generate(&body).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
    let before = client.get("/api/generations?shopper_id=cust%2F9%20%C3%A9").expect(200).await;
    assert_eq!(before["data"].as_array().unwrap().len(), 2);
    assert_eq!(before["data"][0]["metadata"]["product"], "sku-1");

    as_widget(&api, Method::DELETE, "/api/shoppers/cust%2F9%20%C3%A9", &pk, &anonymous_shopper(), SHOP).send().await.assert_error(403, "secret_key_required");
    let erased = client.call(Method::DELETE, "/api/shoppers/cust%2F9%20%C3%A9").expect(200).await;
    assert_eq!(erased["erased_generations"], 2);
    let after = client.get("/api/generations?shopper_id=cust%2F9%20%C3%A9").expect(200).await;
    assert!(after["data"].as_array().unwrap().is_empty());
    let all = client.history().await;
    assert_eq!(all.len(), 3, "the rows stay");
    let row = all.iter().find(|g| g["id"] == made["generation_id"]).unwrap();
    assert_eq!((row["shopper_id"].clone(), row["image_url"].clone(), row["metadata"].clone()), (Value::Null, Value::Null, json!({})));
    // The image itself is gone: its link from before the erasure no longer serves it.
    let old_link = made["image_url"].as_str().unwrap();
    let path = old_link.strip_prefix(&api.base).expect("our own URL");
    let gone = api.get(path).send().await;
    assert!([404, 410].contains(&gone.status), "the erased image answered {}", gone.status);
    assert_eq!(client.wait_until_settled().await["used"], 3, "usage counts are kept");
}

#[tokio::test]
async fn erasing_a_shopper_ends_their_live_jobs_and_no_one_elses() {
    let (_, client, _) = shop(json!({})).await;
    let live_job = |shopper: &str| {
        let m = marker();
        crate::support::inject_after(&m, crate::support::FaultMode::Slow, 10_000);
        let mut body = try_on(&m);
        body["shopper_id"] = json!(shopper);
        body
    };
    let theirs = client.post("/api/jobs").json(&live_job("cust-erased")).expect(202).await;
    let others = client.post("/api/jobs").json(&live_job("cust-kept")).expect(202).await;
    let erased = client.call(Method::DELETE, "/api/shoppers/cust-erased").expect(200).await;
    assert_eq!((erased["erased_generations"].as_u64(), erased["erased_jobs"].as_u64()), (Some(0), Some(1)), "{erased}");
    client.get(&format!("/api/jobs/{}", theirs["id"].as_str().unwrap())).send().await.assert_error(404, "not_found");
    let kept = client.get(&format!("/api/jobs/{}", others["id"].as_str().unwrap())).expect(200).await;
    assert_eq!(kept["shopper_id"], "cust-kept");
}

#[tokio::test]
async fn the_widget_script_is_cached_an_hour_and_revalidated_by_its_etag() {
    let api = Api::shared();
    let script = api.get("/widget.js").send().await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(script.header("cache-control"), Some("public, max-age=3600, stale-while-revalidate=86400"));
    let etag = script.header("etag").unwrap().to_string();
    assert!(script.text.contains("TryOn"));
    let again = api.get("/widget.js").header("if-none-match", &etag).send().await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
}
