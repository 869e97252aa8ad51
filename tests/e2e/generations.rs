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

/// A client's shoppers over the last `days` (counted back from now: a
/// generation 30 days ago to the second is in, one a second older is out),
/// the busiest first; and one shopper's generations across the admin list.
#[tokio::test]
async fn admins_see_a_clients_shoppers_of_the_last_30_days_and_filter_by_shopper() {
    use crate::support::clock::{DAY, SECOND};
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    let now = at("2031-11-20T12:00:00Z");
    let m = marker();
    let (alice, bob, carol) = (format!("alice-{m}"), format!("bob-{m}"), format!("carol-{m}"));
    let as_shopper = |shopper: &str, image_marker: &str| {
        let mut body = try_on(image_marker);
        body["shopper_id"] = json!(shopper);
        body
    };
    let gen_at = |body: Value, when: u64| client.generate(&body).header("x-test-now", &header(when)).send();
    for _ in 0..2 {
        assert_eq!(gen_at(as_shopper(&alice, &marker()), now - DAY).await.status, 200);
    }
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    assert_eq!(gen_at(as_shopper(&alice, &failing), now - DAY).await.status, 502);
    assert_eq!(gen_at(as_shopper(&bob, &marker()), now - 30 * DAY).await.status, 200);
    assert_eq!(gen_at(as_shopper(&carol, &marker()), now - 30 * DAY - SECOND).await.status, 200);
    assert_eq!(gen_at(try_on(&marker()), now - DAY).await.status, 200); // the shop's own, no shopper

    // An admin logged in "then", so the session is alive at that time.
    let admin = Api::shared().login_at(now).await;
    let seen = admin.get(&format!("/admin/clients/{}/shoppers?days=30", client.id)).header("x-test-now", &header(now)).expect(200).await;
    assert_eq!((seen["days"].as_u64(), seen["shoppers"].as_u64(), seen["generations"].as_u64()), (Some(30), Some(2), Some(4)), "{seen}");
    let busiest: Vec<(String, u64, u64)> = seen["busiest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["shopper_id"].as_str().unwrap().to_string(), s["generations"].as_u64().unwrap(), s["successful"].as_u64().unwrap()))
        .collect();
    assert_eq!(busiest, vec![(alice.clone(), 3, 2), (bob.clone(), 1, 1)]);
    // A day longer reaches carol.
    let longer = admin.get(&format!("/admin/clients/{}/shoppers?days=31", client.id)).header("x-test-now", &header(now)).expect(200).await;
    assert_eq!((longer["shoppers"].as_u64(), longer["generations"].as_u64()), (Some(3), Some(5)));

    let alices = admin.get(&format!("/admin/generations?shopper_id={alice}&limit=100")).header("x-test-now", &header(now)).expect(200).await;
    let rows = alices["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{alices}");
    assert!(rows.iter().all(|g| g["shopper_id"] == alice.as_str() && g["client_id"] == client.id.as_str()), "{alices}");
}
