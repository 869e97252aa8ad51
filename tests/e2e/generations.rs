//! History: each client sees its own generations, newest first, page by page.

use crate::support::clock::{at, header};
use crate::support::{garment_url, inject, marker, person_url, try_on, Api, FaultMode};
use serde_json::{json, Value};

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

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn admins_filter_generations_by_client_status_model_and_time() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let other = admin.new_client().await;
    let (t1, t2, t3) = (at("2031-09-03T10:00:00Z"), at("2031-09-04T10:00:00Z"), at("2031-09-05T10:00:00Z"));
    let gen_at = |body: Value, now: u64| client.generate(&body).header("x-test-now", &header(now)).send();

    let ok = gen_at(try_on(&marker()), t1).await;
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    let failed = gen_at(try_on(&failing), t2).await;
    failed.assert_error(502, "upstream_error");
    let m = marker();
    let nano = json!({ "model": "nano-banana-pro", "person_image_url": person_url(&m), "garment_image_urls": [garment_url(&m)] });
    let banana = gen_at(nano, t3).await;
    other.generate(&try_on(&marker())).header("x-test-now", &header(t2)).expect(200).await;
    let g1 = ok.body["generation_id"].as_str().unwrap().to_string();
    let g3 = banana.body["generation_id"].as_str().unwrap().to_string();
    let history = client.history().await;
    assert_eq!(history.len(), 3);
    let g2 = history.iter().find(|g| g["status"] == "error").unwrap()["id"].as_str().unwrap().to_string();

    let list = |query: &'static str| {
        let call = admin.get(&format!("/admin/generations?client_id={}{query}", client.id));
        async move { ids(&call.expect(200).await) }
    };
    assert_eq!(list("").await, [g3.clone(), g2.clone(), g1.clone()], "newest first, this client only");
    assert_eq!(list("&status=error").await, [g2.clone()]);
    assert_eq!(list("&status=success").await, [g3.clone(), g1.clone()]);
    assert_eq!(list("&model=nano-banana-pro").await, [g3.clone()]);
    assert_eq!(list("&model=fal-virtual-try-on").await, [g2.clone(), g1.clone()]);
    assert_eq!(list("&status=success&model=fal-virtual-try-on").await, [g1.clone()]);
    // `from` is inclusive, `to` exclusive.
    assert_eq!(list("&from=2031-09-04T10:00:00Z").await, [g3.clone(), g2.clone()]);
    assert_eq!(list("&to=2031-09-04T10:00:00Z").await, [g1.clone()]);
    assert_eq!(list("&from=2031-09-03T10:00:00Z&to=2031-09-05T10:00:00Z").await, [g2.clone(), g1.clone()]);
    assert!(list("&from=2999-01-01T00:00:00Z").await.is_empty());
    // Without a client filter, the same filters reach across clients.
    let successes_at_t2 = ids(&admin.get("/admin/generations?status=success&from=2031-09-04T10:00:00Z&to=2031-09-04T10:00:00.001Z").expect(200).await);
    assert_eq!(successes_at_t2.len(), 1, "only the other client's success at t2: {successes_at_t2:?}");

    admin.get("/admin/generations?status=maybe").send().await.assert_error(400, "invalid_query");
    admin.get("/admin/generations?from=yesterday").send().await.assert_error(400, "invalid_query");
    admin.get("/admin/generations?model=gpt").send().await.assert_error(400, "invalid_query");
}
