//! History: each client sees its own generations, newest first, page by page.

use crate::support::{inject, marker, try_on, Api, FaultMode};
use serde_json::Value;

#[tokio::test]
async fn history_is_newest_first_and_cursor_paginated() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let reply = client.generate(&try_on(&marker())).expect(200).await;
        ids.push(reply["generation_id"].as_str().unwrap().to_string());
    }
    ids.reverse();

    let first = client.get("/api/generations?limit=2").expect(200).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = client.get(&format!("/api/generations?limit=2&cursor={cursor}")).expect(200).await;
    let cursor = second["next_cursor"].as_str().unwrap();
    let third = client.get(&format!("/api/generations?limit=2&cursor={cursor}")).expect(200).await;
    assert_eq!(third["next_cursor"], Value::Null);

    let seen: Vec<String> = [first, second, third]
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect::<Vec<_>>())
        .collect();
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn bad_pagination_parameters_are_400() {
    let client = Api::shared().login().await.new_client().await;
    client.get("/api/generations?limit=0").send().await.assert_error(400, "invalid_query");
    client.get("/api/generations?limit=1000").send().await.assert_error(400, "invalid_query");
    client.get("/api/generations?cursor=garbage!").send().await.assert_error(400, "invalid_cursor");
}

#[tokio::test]
async fn a_client_never_sees_another_clients_generations() {
    let admin = Api::shared().login().await;
    let a = admin.new_client().await;
    let b = admin.new_client().await;
    let a_gen = a.generate(&try_on(&marker())).expect(200).await;
    assert!(b.history().await.is_empty());
    let a_history = a.history().await;
    assert_eq!(a_history.len(), 1);
    assert_eq!(a_history[0]["id"], a_gen["generation_id"]);
    // Not even with a cursor pointing into A's history.
    let cursor = base64_cursor(&a_history[0]);
    let page = b.get(&format!("/api/generations?cursor={cursor}")).expect(200).await;
    assert!(page["data"].as_array().unwrap().is_empty());
}

fn base64_cursor(g: &Value) -> String {
    use base64::Engine;
    let created = chrono_ms(g["created_at"].as_str().unwrap()) + 1;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created}:zzzz"))
}

fn chrono_ms(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis() as u64
}

#[tokio::test]
async fn admins_filter_generations_by_client_status_and_model() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    client.generate(&try_on(&marker())).expect(200).await;
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    client.generate(&try_on(&failing)).send().await.assert_error(502, "upstream_error");

    let all = admin.get(&format!("/admin/generations?client_id={}", client.id)).expect(200).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let errors = admin.get(&format!("/admin/generations?client_id={}&status=error", client.id)).expect(200).await;
    let errors = errors["data"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["client_id"], client.id.as_str());
    let none = admin.get(&format!("/admin/generations?client_id={}&model=nano-banana-pro", client.id)).expect(200).await;
    assert!(none["data"].as_array().unwrap().is_empty());
    let future = admin.get(&format!("/admin/generations?client_id={}&from=2999-01-01T00:00:00Z", client.id)).expect(200).await;
    assert!(future["data"].as_array().unwrap().is_empty());

    admin.get("/admin/generations?status=maybe").send().await.assert_error(400, "invalid_query");
    admin.get("/admin/generations?from=yesterday").send().await.assert_error(400, "invalid_query");
    admin.get("/admin/generations?model=gpt").send().await.assert_error(400, "invalid_query");
}
