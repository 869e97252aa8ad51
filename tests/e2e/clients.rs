//! Clients and their keys, managed by admins and used by shops.

use crate::support::clock::{header, now_ms, SECOND};
use crate::support::{keys, marker, try_on, Admin, Api, TestClient};
use serde_json::{json, Value};

async fn all_clients(admin: &Admin) -> Vec<Value> {
    crate::support::api::all_pages(|cursor| admin.get(&format!("/admin/clients?limit=100&cursor={cursor}"))).await
}

#[tokio::test]
async fn a_new_client_authenticates_at_once_and_its_generation_shows_everywhere() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;

    let m = marker();
    let generated = client.generate(&try_on(&m)).expect(200).await;
    let generation_id = generated["generation_id"].as_str().unwrap();
    crate::results::assert_serves_fals_bytes(&admin, &client, generation_id, generated["image_url"].as_str().unwrap()).await;
    assert_eq!(generated["model"], "fal-virtual-try-on");
    assert!(generated["duration_ms"].as_u64().is_some());

    let history = client.history().await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["id"], generation_id);
    assert_eq!(history[0]["status"], "success");

    let metrics = admin.get(&format!("/admin/clients/{}/metrics", client.id)).expect(200).await;
    assert_eq!(metrics["total_generations"], 1);
    assert_eq!(metrics["success_count"], 1);
    assert_eq!(metrics["error_count"], 0);
    assert_eq!(metrics["generations_by_model"]["fal-virtual-try-on"], 1);
    assert_eq!(metrics["recent_events"][0]["id"], generation_id);
    assert!(metrics["last_generation_at"].is_string());
}

#[tokio::test]
async fn the_full_key_is_shown_once_and_only_its_prefix_is_kept() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    assert!(client.key.starts_with("vto_"));
    let shown = admin.get(&format!("/admin/clients/{}", client.id)).send().await;
    assert_eq!(shown.status, 200);
    assert!(!shown.text.contains(&client.key), "the key must not be readable again");
    let prefix = shown.body["keys"][0]["prefix"].as_str().unwrap();
    assert!(client.key.starts_with(prefix) && prefix.len() < client.key.len() / 2);
    assert_eq!(shown.body["keys"][0]["status"], "active");
}

#[tokio::test]
async fn new_clients_get_the_documented_defaults() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let c = &client.created["client"];
    assert_eq!(c["usage_limit"], 5000);
    assert_eq!(c["rate_limit_per_minute"], 60);
    assert_eq!(c["rate_limit_burst"], Value::Null);
    assert_eq!(c["max_concurrent"], 4);
    assert_eq!(c["active"], true);
    assert_eq!(c["allowed_origins"], json!([]));
    assert_eq!(
        (c["widget_rate_limit_per_minute"].as_u64(), c["shopper_rate_limit_per_minute"].as_u64(), c["shopper_daily_limit"].as_u64()),
        (Some(30), Some(5), Some(30))
    );
    // And the limiter applies them: a burst of the per-minute figure.
    let usage = client.get("/api/usage").expect(200).await;
    assert_eq!((usage["limit"].as_u64(), usage["rate_limit_burst"].as_u64(), usage["max_concurrent"].as_u64()), (Some(5000), Some(60), Some(4)));
}

/// `RETENTION_DAYS` is the shared stack's default, 396.
#[tokio::test]
async fn retention_days_may_be_set_from_one_day_to_retention_days_and_cleared() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let path = format!("/admin/clients/{}", client.id);
    for days in [1, 396] {
        assert_eq!(admin.patch(&path).json(&json!({ "retention_days": days })).expect(200).await["retention_days"], days);
    }
    for days in [0, 397] {
        admin.patch(&path).json(&json!({ "retention_days": days })).send().await.assert_error(422, "invalid_retention");
    }
    assert_eq!(admin.get(&path).expect(200).await["retention_days"], 396, "a refused change changes nothing");
    assert_eq!(admin.patch(&path).json(&json!({ "retention_days": null })).expect(200).await["retention_days"], Value::Null);
}

#[tokio::test]
async fn bad_client_input_is_refused_and_creates_nothing() {
    let admin = Api::shared().login().await;
    let name = format!("Never created {}", marker());
    let cases = [
        (json!({ "name": "" }), 422, "invalid_name"),
        (json!({ "name": name, "email": "not-an-email" }), 422, "invalid_email"),
        (json!({ "name": name, "usage_limit": "lots" }), 422, "invalid_request"),
        (json!({ "name": name, "rate_limit_per_minute": 0 }), 422, "invalid_limit"),
        (json!({ "name": name, "allowed_origins": ["not an origin"] }), 422, "invalid_origin"),
        (json!({ "name": name, "api_key": "demo_key_12345" }), 422, "invalid_request"),
        (json!({ "email": "a@b.example" }), 422, "invalid_request"),
    ];
    for (body, status, code) in cases {
        admin.post("/admin/clients").json(&body).send().await.assert_error(status, code);
    }
    admin.post("/admin/clients").raw("application/json", "{\"name\":").send().await.assert_error(400, "malformed_json");
    admin.post("/admin/clients").raw("text/plain", name.clone()).send().await.assert_error(415, "unsupported_media_type");
    let big = json!({ "name": "x".repeat(70 * 1024) });
    admin.post("/admin/clients").json(&big).send().await.assert_error(413, "payload_too_large");

    assert!(all_clients(&admin).await.iter().all(|c| c["name"] != name.as_str()));
}

#[tokio::test]
async fn updates_change_what_they_name_and_nothing_else() {
    let admin = Api::shared().login().await;
    let client = admin
        .create_client(json!({ "name": format!("Patch {}", marker()), "email": "ops@shop.example" }))
        .await;
    let path = format!("/admin/clients/{}", client.id);
    let updated = admin
        .patch(&path)
        .json(&json!({ "usage_limit": 12, "rate_limit_per_minute": 5, "allowed_origins": ["https://Shop.Example/"] }))
        .expect(200)
        .await;
    assert_eq!(updated["usage_limit"], 12);
    assert_eq!(updated["rate_limit_per_minute"], 5);
    assert_eq!(updated["allowed_origins"], json!(["https://shop.example"]));
    assert_eq!(updated["email"], "ops@shop.example");

    let cleared = admin.patch(&path).json(&json!({ "email": null })).expect(200).await;
    assert_eq!(cleared["email"], Value::Null);

    admin.patch(&path).json(&json!({})).send().await.assert_error(422, "empty_update");
    admin.patch(&path).json(&json!({ "usage_limit": -5 })).send().await.assert_error(422, "invalid_request");
    let unchanged = admin.get(&path).expect(200).await;
    assert_eq!(unchanged["usage_limit"], 12);
    admin.patch("/admin/clients/cl_0000000000000000").json(&json!({ "name": "x" })).send().await.assert_error(404, "not_found");
}

#[tokio::test]
async fn unknown_clients_are_404() {
    let admin = Api::shared().login().await;
    admin.get("/admin/clients/cl_0000000000000000").send().await.assert_error(404, "not_found");
    admin.get("/admin/clients/client_001").send().await.assert_error(404, "not_found");
    admin.get("/admin/clients/cl_0000000000000000/metrics").send().await.assert_error(404, "not_found");
}

#[tokio::test]
async fn rotation_revokes_the_old_key_on_the_next_request() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    client.get("/api/generations").expect(200).await;

    let rotated = admin.post(&format!("/admin/clients/{}/keys", client.id)).expect(201).await;
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_ne!(new_key, client.key);

    client.get("/api/generations").send().await.assert_error(401, "invalid_api_key");
    let api = Api::shared();
    api.get("/api/generations").header("x-api-key", new_key).expect(200).await;
    api.get("/api/generations").header("authorization", &format!("Bearer {new_key}")).expect(200).await;
}

#[tokio::test]
async fn rotation_with_a_grace_period_keeps_the_old_key_until_it_ends() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let rotated_at = now_ms();
    let rotated = admin
        .post(&format!("/admin/clients/{}/keys", client.id))
        .header("x-test-now", &header(rotated_at))
        .json(&json!({ "grace_period_seconds": 3600 }))
        .expect(201)
        .await;
    let new_key = rotated["api_key"].as_str().unwrap().to_string();
    let statuses: Vec<String> = rotated["client"]["keys"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap().to_string()).collect();
    assert_eq!(statuses, vec!["active", "expiring"]);
    let new = TestClient { key: new_key, ..client.clone() };

    // Both keys work one second before the grace period ends, on the limiter's
    // path (usage) and on D1's (history)...
    let inside = header(rotated_at + 3599 * SECOND);
    for key in [&client, &new] {
        key.get("/api/usage").header("x-test-now", &inside).expect(200).await;
        key.get("/api/generations").header("x-test-now", &inside).expect(200).await;
    }
    // ...and one second after it, only the new one does.
    let outside = header(rotated_at + 3601 * SECOND);
    client.get("/api/usage").header("x-test-now", &outside).send().await.assert_error(401, "invalid_api_key");
    client.get("/api/generations").header("x-test-now", &outside).send().await.assert_error(401, "invalid_api_key");
    new.get("/api/usage").header("x-test-now", &outside).expect(200).await;
    new.get("/api/generations").header("x-test-now", &outside).expect(200).await;
}

#[tokio::test]
async fn the_grace_period_is_at_most_seven_days() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let path = format!("/admin/clients/{}/keys", client.id);
    admin.post(&path).json(&json!({ "grace_period_seconds": 7 * 24 * 3600 + 1 })).send().await.assert_error(422, "invalid_grace_period");
    client.get("/api/usage").expect(200).await;
    admin.post(&path).json(&json!({ "grace_period_seconds": 7 * 24 * 3600 })).expect(201).await;
    client.get("/api/usage").expect(200).await;
}

#[tokio::test]
async fn a_revoked_key_stops_working_on_the_next_request() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    client.get("/api/generations").expect(200).await;
    let key_id = client.created["client"]["keys"][0]["id"].as_str().unwrap();
    let revoked = admin.delete(&format!("/admin/clients/{}/keys/{key_id}", client.id)).expect(200).await;
    assert_eq!(revoked["status"], "revoked");
    client.get("/api/generations").send().await.assert_error(401, "invalid_api_key");
    client.generate(&try_on(&marker())).send().await.assert_error(401, "invalid_api_key");

    admin.delete(&format!("/admin/clients/{}/keys/key_nope", client.id)).send().await.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_key_cannot_revoke_across_clients() {
    let admin = Api::shared().login().await;
    let a = admin.new_client().await;
    let b = admin.new_client().await;
    let a_key = a.created["client"]["keys"][0]["id"].as_str().unwrap();
    admin.delete(&format!("/admin/clients/{}/keys/{a_key}", b.id)).send().await.assert_error(404, "not_found");
    a.get("/api/generations").expect(200).await;
}

#[tokio::test]
async fn a_deactivated_client_is_refused_until_reactivated() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let path = format!("/admin/clients/{}", client.id);
    admin.patch(&path).json(&json!({ "active": false })).expect(200).await;
    client.generate(&try_on(&marker())).send().await.assert_error(403, "client_inactive");
    admin.patch(&path).json(&json!({ "active": true })).expect(200).await;
    client.get("/api/generations").expect(200).await;
}

#[tokio::test]
async fn missing_and_malformed_keys_are_401_before_any_storage_is_asked() {
    let api = Api::shared();
    api.get("/api/usage").send().await.assert_error(401, "missing_api_key");
    api.get("/api/usage").header("authorization", "Basic abc").send().await.assert_error(401, "invalid_authorization");
    let client = api.login().await.new_client().await;
    for malformed in ["demo_key_12345".to_string(), keys::with_bad_checksum(&client.key), client.key[..client.key.len() - 1].to_string()] {
        let reply = api.get("/api/usage").header("x-api-key", &malformed).send().await;
        reply.assert_error(401, "invalid_api_key");
        assert!(reply.body["error"]["message"].as_str().unwrap().contains("malformed"), "{}", reply.text);
        // Refused by the checksum alone: no limiter or store call was timed.
        assert_eq!(reply.header("server-timing"), None, "{malformed} reached storage");
    }
}

#[tokio::test]
async fn a_well_formed_key_that_was_never_issued_is_401() {
    let api = Api::shared();
    let client = api.login().await.new_client().await;
    // Right format and checksum, naming a real client, but never issued...
    let forged = keys::well_formed(&client.id, "ForgedForgedForgedForgedForged00");
    // ...and one naming a client that does not exist.
    let nobody = keys::well_formed("cl_0000000000000000", "ForgedForgedForgedForgedForged00");
    for key in [&forged, &nobody] {
        for path in ["/api/usage", "/api/generations"] {
            let reply = api.get(path).header("x-api-key", key).send().await;
            reply.assert_error(401, "invalid_api_key");
            assert!(!reply.body["error"]["message"].as_str().unwrap().contains("malformed"), "passed the checksum: {}", reply.text);
        }
        api.post("/api/images/generate").header("x-api-key", key).json(&try_on(&marker())).send().await.assert_error(401, "invalid_api_key");
    }
    client.get("/api/usage").expect(200).await;
}
