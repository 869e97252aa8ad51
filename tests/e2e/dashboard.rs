//! The operators' dashboard: the page's security headers, and the figures
//! behind it. The figures are read in a month of the test clock that only
//! this module writes to (July 2032), so they are exact although every test
//! shares the stack. (The browser test, `browser`, checks what the page shows.)

use crate::support::clock::{at, header, DAY};
use crate::support::{inject, marker, try_on, Api, FaultMode, TestClient};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[tokio::test]
async fn the_dashboard_is_served_under_a_strict_content_security_policy() {
    let page = Api::shared().get("/admin").send().await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let csp = page.header("content-security-policy").expect("a CSP");
    let directives: BTreeMap<&str, Vec<&str>> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace();
            (words.next().unwrap(), words.collect())
        })
        .collect();
    let expected: BTreeMap<&str, Vec<&str>> = [
        ("default-src", vec!["'none'"]),
        ("script-src", vec!["'self'"]),
        ("style-src", vec!["'self'"]),
        // Result thumbnails: FAL's CDN (https), or the emulator on loopback in development.
        ("img-src", vec!["'self'", "data:", "https:", "http://127.0.0.1:*", "http://localhost:*"]),
        ("connect-src", vec!["'self'"]),
        ("base-uri", vec!["'none'"]),
        ("form-action", vec!["'self'"]),
        ("frame-ancestors", vec!["'none'"]),
    ]
    .into_iter()
    .collect();
    assert_eq!(directives, expected, "full header: {csp}");
    assert!(!csp.contains("unsafe"), "no 'unsafe-inline' or 'unsafe-eval': {csp}");
    for asset in ["/admin/assets/app.js", "/admin/assets/app.css"] {
        let reply = Api::shared().get(asset).send().await;
        assert_eq!(reply.status, 200, "{asset}");
        assert_eq!(reply.header("content-security-policy"), Some(csp), "{asset}");
    }
}

async fn generate_at(client: &TestClient, ms: u64, fail: bool) -> Value {
    let m = marker();
    if fail {
        inject(&m, FaultMode::Error500);
    }
    let reply = client.generate(&try_on(&m)).header("x-test-now", &header(ms)).send().await;
    assert_eq!(reply.status, if fail { 502 } else { 200 }, "{}", reply.text);
    reply.body
}

#[tokio::test]
async fn the_dashboards_figures_count_exactly_what_happened() {
    let today = at("2032-07-15T12:00:00Z");
    let api = Api::shared();
    let admin = api.login_at(today).await;
    let busy = admin.create_client(json!({ "name": format!("Busy {}", marker()) })).await;
    let quiet = admin.create_client(json!({ "name": format!("Quiet {}", marker()) })).await;
    let mut durations = Vec::new();
    for _ in 0..3 {
        durations.push(generate_at(&busy, today, false).await["duration_ms"].as_u64().unwrap());
    }
    durations.push(generate_at(&busy, today - 2 * DAY, false).await["duration_ms"].as_u64().unwrap());
    generate_at(&quiet, today, false).await;
    generate_at(&quiet, today, true).await;
    // Last month's generation: outside this month's figures, inside the 30-day ones.
    generate_at(&busy, at("2032-06-30T23:00:00Z"), false).await;

    let get = |path: String| admin.get(&path).header("x-test-now", &header(today)).expect(200);

    let overview = get("/admin/overview".into()).await;
    assert_eq!(overview["today"], json!({ "success": 4, "error": 1, "total": 5 }));
    assert_eq!(overview["month"], json!({ "success": 5, "error": 1, "total": 6 }));
    let busiest: Vec<(String, u64, u64)> = overview["busiest_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap().to_string(), c["success"].as_u64().unwrap(), c["error"].as_u64().unwrap()))
        .collect();
    assert_eq!(busiest, vec![(busy.id.clone(), 4, 0), (quiet.id.clone(), 1, 1)]);
    assert_eq!(overview["busiest_clients"][0]["name"], busy.created["client"]["name"]);

    let stats = get(format!("/admin/clients/{}/stats?days=30", busy.id)).await;
    let daily: Vec<(u64, String, u64, u64)> = stats["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["day"].as_u64().unwrap(), d["model"].as_str().unwrap().to_string(), d["success"].as_u64().unwrap(), d["error"].as_u64().unwrap()))
        .collect();
    let day = |ms: u64| ms / DAY;
    let model = "fal-virtual-try-on".to_string();
    assert_eq!(
        daily,
        vec![
            (day(at("2032-06-30T23:00:00Z")), model.clone(), 1, 0),
            (day(today - 2 * DAY), model.clone(), 1, 0),
            (day(today), model.clone(), 3, 0),
        ]
    );
    // Percentiles over the successes of the last 30 days: five of them (June's included).
    let june = admin
        .get(&format!("/admin/generations?client_id={}&to=2032-07-01T00:00:00Z", busy.id))
        .header("x-test-now", &header(today))
        .expect(200)
        .await;
    durations.push(june["data"][0]["duration_ms"].as_u64().unwrap());
    durations.sort();
    let nearest_rank = |p: f64| durations[((p * durations.len() as f64).ceil() as usize).max(1) - 1];
    assert_eq!(stats["duration_ms"]["n"], 5);
    assert_eq!(stats["duration_ms"]["p50"].as_u64(), Some(nearest_rank(0.5)));
    assert_eq!(stats["duration_ms"]["p95"].as_u64(), Some(nearest_rank(0.95)));
    let one_day = get(format!("/admin/clients/{}/stats?days=1", busy.id)).await;
    assert_eq!(one_day["daily"].as_array().unwrap().len(), 1, "days=1 is today only");

    let listed = crate::support::api::all_pages(|cursor| {
        admin.get(&format!("/admin/clients?limit=100&cursor={cursor}")).header("x-test-now", &header(today))
    })
    .await;
    let row = |id: &str| listed.iter().find(|c| c["id"] == id).cloned().unwrap();
    let busy_row = row(&busy.id);
    assert_eq!((busy_row["usage_this_month"].as_u64(), busy_row["failed_this_month"].as_u64()), (Some(4), Some(0)));
    assert_eq!(busy_row["last_generation_at"], "2032-07-15T12:00:00.000Z");
    let quiet_row = row(&quiet.id);
    assert_eq!((quiet_row["usage_this_month"].as_u64(), quiet_row["failed_this_month"].as_u64()), (Some(1), Some(1)));

    let metrics = get(format!("/admin/clients/{}/metrics", busy.id)).await;
    assert_eq!((metrics["total_generations"].as_u64(), metrics["success_count"].as_u64(), metrics["error_count"].as_u64()), (Some(5), Some(5), Some(0)));
    assert_eq!(metrics["generations_by_model"], json!({ "fal-virtual-try-on": 5 }));
    assert_eq!(metrics["recent_events"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_clients_metrics_list_its_last_50_events_newest_first() {
    let admin = Api::shared().login().await;
    let client = admin.create_client(json!({ "name": format!("Fifty {}", marker()), "rate_limit_per_minute": 1000, "max_concurrent": 100 })).await;
    let start = at("2032-08-01T00:00:00Z");
    // 52 generations a second apart, eight at a time.
    let mut ids = Vec::new();
    for chunk in (0..52u64).collect::<Vec<_>>().chunks(8) {
        let replies = futures::future::join_all(chunk.iter().map(|i| generate_at(&client, start + i * 1000, false))).await;
        ids.extend(replies.into_iter().map(|r| r["generation_id"].as_str().unwrap().to_string()));
    }
    let metrics = admin.get(&format!("/admin/clients/{}/metrics", client.id)).expect(200).await;
    assert_eq!(metrics["total_generations"], 52);
    let events: Vec<&str> = metrics["recent_events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    let newest_50: Vec<&str> = ids.iter().rev().take(50).map(String::as_str).collect();
    assert_eq!(events, newest_50);
    assert_eq!(metrics["last_generation_at"], "2032-08-01T00:00:51.000Z");
}
