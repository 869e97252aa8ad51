//! Browser access from shop pages: preflights, allowed and refused origins.

use crate::support::{marker, try_on, Api, TestClient};
use serde_json::json;

async fn shop(origins: &[&str]) -> TestClient {
    let admin = Api::shared().login().await;
    admin.create_client(json!({ "name": format!("Cors {}", marker()), "allowed_origins": origins })).await
}

#[tokio::test]
async fn preflights_are_answered_without_a_key() {
    let api = Api::shared();
    let reply = api
        .call(reqwest::Method::OPTIONS, "/api/images/generate")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key, content-type, idempotency-key, authorization, x-tryon-shopper, last-event-id")
        .send()
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://shop.example"));
    let allowed = reply.header("access-control-allow-headers").unwrap();
    let allowed: Vec<&str> = allowed.split(',').map(str::trim).collect();
    for h in ["x-api-key", "content-type", "idempotency-key", "authorization", "x-tryon-shopper", "last-event-id"] {
        assert!(allowed.contains(&h), "{h} missing from {allowed:?}");
    }
    assert!(reply.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(reply.header("vary").unwrap().contains("Origin"));
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_headers() {
    let client = shop(&["https://shop.example", "https://*.brand.example"]).await;
    for origin in ["https://shop.example", "https://de.brand.example"] {
        let reply = client.generate(&try_on(&marker())).header("origin", origin).send().await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
        assert!(reply.header("vary").unwrap().contains("Origin"));
        assert!(reply.header("access-control-expose-headers").unwrap().contains("ratelimit"));
    }
    let history = client.get("/api/generations").header("origin", "https://shop.example").send().await;
    assert_eq!(history.status, 200);
    assert_eq!(history.header("access-control-allow-origin"), Some("https://shop.example"));
}

#[tokio::test]
async fn other_origins_are_refused_without_cors_headers() {
    let client = shop(&["https://shop.example"]).await;
    for origin in ["https://evil.example", "http://shop.example", "https://shop.example.evil.example"] {
        let reply = client.generate(&try_on(&marker())).header("origin", origin).send().await;
        reply.assert_error(403, "origin_not_allowed");
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    client.get("/api/generations").header("origin", "https://evil.example").send().await.assert_error(403, "origin_not_allowed");
    assert!(client.history().await.is_empty());
}

#[tokio::test]
async fn a_change_of_allowed_origins_applies_to_the_next_request() {
    let admin = Api::shared().login().await;
    let client = shop(&["https://old.example"]).await;
    client.get("/api/usage").header("origin", "https://new.example").send().await.assert_error(403, "origin_not_allowed");
    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "allowed_origins": ["https://new.example"] })).expect(200).await;
    let reply = client.generate(&try_on(&marker())).header("origin", "https://new.example").send().await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://new.example"));
    client.generate(&try_on(&marker())).header("origin", "https://old.example").send().await.assert_error(403, "origin_not_allowed");
}

#[tokio::test]
async fn no_allowed_origins_means_no_browser_access() {
    let client = shop(&[]).await;
    client.generate(&try_on(&marker())).header("origin", "https://shop.example").send().await.assert_error(403, "origin_not_allowed");
}

#[tokio::test]
async fn server_to_server_calls_without_origin_are_unaffected() {
    let client = shop(&[]).await;
    let reply = client.generate(&try_on(&marker())).send().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}
