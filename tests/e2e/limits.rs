//! Rate limit, monthly quota and concurrency, decided by the client's
//! Durable Object on every generation request.

use crate::support::clock::{at, header, now_ms, SECOND};
use crate::support::{inject, inject_after, marker, stack, try_on, wait_until, Api, FaultMode, Reply, TestClient};
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;

async fn client_with(limits: Value) -> TestClient {
    let admin = Api::shared().login().await;
    let mut body = limits;
    body["name"] = json!(format!("Limits {}", marker()));
    admin.create_client(body).await
}

/// Fires `n` generations at once and returns the replies.
async fn burst(client: &TestClient, n: usize) -> Vec<Reply> {
    let calls = (0..n).map(|_| {
        let client = client.clone();
        async move { client.generate(&try_on(&marker())).send().await }
    });
    join_all(calls).await
}

/// Fires `n` generations at once, all at `now` on the test clock, so the
/// bucket refills nothing between them and every figure is exact.
async fn burst_at(client: &TestClient, n: usize, now: u64) -> Vec<Reply> {
    let calls = (0..n).map(|_| {
        let client = client.clone();
        async move { client.generate(&try_on(&marker())).header("x-test-now", &header(now)).send().await }
    });
    join_all(calls).await
}

async fn generate_at(client: &TestClient, now: u64) -> Reply {
    client.generate(&try_on(&marker())).header("x-test-now", &header(now)).send().await
}

fn count(replies: &[Reply], status: u16, code: Option<&str>) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && code.is_none_or(|c| r.body["error"]["code"] == c))
        .count()
}

#[tokio::test]
async fn the_rate_limit_admits_exactly_its_figure_of_a_concurrent_burst() {
    let client = client_with(json!({ "rate_limit_per_minute": 5, "max_concurrent": 50 })).await;
    let t = at("2031-05-14T10:00:00Z");
    let replies = burst_at(&client, 12, t).await;
    assert_eq!(count(&replies, 200, None), 5, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(count(&replies, 429, Some("rate_limited")), 7);
    for refused in replies.iter().filter(|r| r.status == 429) {
        // 5 per minute: the next token comes in exactly 12 s.
        assert_eq!(refused.header("retry-after"), Some("12"));
        assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    }
    // One second short of the next token, still refused; at 12 s, admitted once.
    generate_at(&client, t + 11 * SECOND).await.assert_error(429, "rate_limited");
    assert_eq!(generate_at(&client, t + 12 * SECOND).await.status, 200);
    generate_at(&client, t + 12 * SECOND).await.assert_error(429, "rate_limited");
}

#[tokio::test]
async fn rate_limit_burst_caps_the_bucket_below_the_per_minute_figure() {
    let client = client_with(json!({ "rate_limit_per_minute": 60, "rate_limit_burst": 3, "max_concurrent": 50 })).await;
    let t = at("2031-05-14T10:00:00Z");
    let replies = burst_at(&client, 6, t).await;
    assert_eq!(count(&replies, 200, None), 3, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(count(&replies, 429, Some("rate_limited")), 3);
    let admitted = replies.iter().find(|r| r.status == 200).unwrap();
    assert_eq!(admitted.header("x-ratelimit-limit"), Some("60"));
    assert!(admitted.header("ratelimit-policy").unwrap().starts_with("\"minute\";q=3;w=60, "));
    // 60 per minute refills a token a second, up to the burst of 3.
    assert!(replies.iter().filter(|r| r.status == 429).all(|r| r.header("retry-after") == Some("1")));
    assert_eq!(generate_at(&client, t + SECOND).await.status, 200);
    generate_at(&client, t + SECOND).await.assert_error(429, "rate_limited");
    let usage = client.usage_at(t + 60 * SECOND).await;
    assert_eq!((usage["rate_limit_per_minute"].as_u64(), usage["rate_limit_burst"].as_u64()), (Some(60), Some(3)));
    let after_a_minute = generate_at(&client, t + 60 * SECOND).await;
    assert_eq!(after_a_minute.header("x-ratelimit-remaining"), Some("2"), "the bucket never holds more than the burst");
}

#[tokio::test]
async fn every_generation_response_carries_exact_rate_limit_headers() {
    let client = client_with(json!({ "rate_limit_per_minute": 3, "usage_limit": 100 })).await;
    let t = at("2031-05-14T10:00:00Z");
    let june = at("2031-06-01T00:00:00Z");
    let may_s = 31 * 24 * 3600;
    let month_left = |now: u64| (june - now).div_ceil(1000);

    // At 3 per minute a token takes 20 s: the reset is the time to refill what was taken.
    let first = generate_at(&client, t).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(first.header("x-ratelimit-reset"), Some("20"));
    assert_eq!(first.header("ratelimit-policy").map(String::from), Some(format!("\"minute\";q=3;w=60, \"month\";q=100;w={may_s}")));
    assert_eq!(first.header("ratelimit").map(String::from), Some(format!("\"minute\";r=2;t=20, \"month\";r=99;t={}", month_left(t))));
    let timing = first.header("server-timing").unwrap();
    for phase in ["limiter;dur=", "fal;dur=", "store;dur="] {
        assert!(timing.contains(phase), "{phase} in {timing}");
    }

    let second = generate_at(&client, t).await;
    assert_eq!((second.header("x-ratelimit-remaining"), second.header("x-ratelimit-reset")), (Some("1"), Some("40")));

    // Ten seconds later half a token came back: 1.5 left, 30 s to full; taking one leaves 0.5 and 50 s.
    let later = t + 10 * SECOND;
    let third = generate_at(&client, later).await;
    assert_eq!((third.header("x-ratelimit-remaining"), third.header("x-ratelimit-reset")), (Some("0"), Some("50")));
    assert_eq!(third.header("ratelimit").map(String::from), Some(format!("\"minute\";r=0;t=50, \"month\";r=97;t={}", month_left(later))));
    let refused = generate_at(&client, later).await;
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("10"), "half a token is 10 s away");
    assert_eq!(refused.header("x-ratelimit-reset"), Some("50"));

    // A failed generation answers with the headers too, and its token is not given back:
    // at 30 s, 1.5 tokens; the failure takes one, so the next request finds half a token.
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    let failed = client.generate(&try_on(&failing)).header("x-test-now", &header(t + 30 * SECOND)).send().await;
    assert_eq!(failed.status, 502);
    assert_eq!(failed.header("x-ratelimit-remaining"), Some("0"));
    generate_at(&client, t + 30 * SECOND).await.assert_error(429, "rate_limited");
}

#[tokio::test]
async fn the_quota_is_exact_under_concurrency() {
    let client = client_with(json!({ "usage_limit": 5, "rate_limit_per_minute": 1000, "max_concurrent": 50 })).await;
    let replies = burst(&client, 12).await;
    assert_eq!(count(&replies, 200, None), 5);
    assert_eq!(count(&replies, 429, Some("quota_exceeded")), 7);
    let usage = client.wait_until_settled().await;
    assert_eq!((usage["used"].as_u64(), usage["remaining"].as_u64()), (Some(5), Some(0)));
    client.generate(&try_on(&marker())).send().await.assert_error(429, "quota_exceeded");
}

#[tokio::test]
async fn failed_generations_cost_no_quota() {
    let client = client_with(json!({ "usage_limit": 2 })).await;
    for _ in 0..3 {
        let m = marker();
        inject(&m, FaultMode::Error500);
        client.generate(&try_on(&m)).send().await.assert_error(502, "upstream_error");
        client.wait_until_settled().await;
    }
    client.generate(&try_on(&marker())).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
    client.generate(&try_on(&marker())).send().await.assert_error(429, "quota_exceeded");
    assert_eq!(client.wait_until_settled().await["used"], 2);
}

#[tokio::test]
async fn an_exhausted_quota_says_when_the_month_ends() {
    let client = client_with(json!({ "usage_limit": 1 })).await;
    let t = at("2031-05-31T23:00:00Z");
    assert_eq!(generate_at(&client, t).await.status, 200);
    let refused = generate_at(&client, t).await;
    refused.assert_error(429, "quota_exceeded");
    assert_eq!(refused.header("retry-after"), Some("3600"));
}

#[tokio::test]
async fn the_quota_resets_at_the_start_of_the_month_utc() {
    let client = client_with(json!({ "usage_limit": 1 })).await;
    let jan_31_late = 1_801_439_940_000u64; // 2027-01-31T23:59:00Z
    let at = |ms: u64| ms.to_string();
    client.generate(&try_on(&marker())).header("x-test-now", &at(jan_31_late)).expect(200).await;
    let refused = client.generate(&try_on(&marker())).header("x-test-now", &at(jan_31_late + 1000)).send().await;
    refused.assert_error(429, "quota_exceeded");
    assert_eq!(refused.header("retry-after"), Some("59"));
    let feb_1 = 1_801_440_000_000u64; // 2027-02-01T00:00:00Z
    client.generate(&try_on(&marker())).header("x-test-now", &at(feb_1 + 1000)).expect(200).await;
    let usage = client.get("/api/usage").header("x-test-now", &at(feb_1 + 2000)).expect(200).await;
    assert_eq!(usage["month"], "2027-02");
    assert_eq!(usage["resets_at"], "2027-03-01T00:00:00.000Z");
}

#[tokio::test]
async fn the_concurrency_cap_holds_and_frees_as_generations_end() {
    let client = client_with(json!({ "max_concurrent": 2, "rate_limit_per_minute": 1000 })).await;
    let slow = marker();
    inject_after(&slow, FaultMode::Slow, 1500);
    let long = |client: TestClient, m: String| async move { client.generate(&try_on(&m)).send().await };
    let first = tokio::spawn(long(client.clone(), format!("{slow}a")));
    let second = tokio::spawn(long(client.clone(), format!("{slow}b")));
    wait_until("both slow generations at FAL", Duration::from_secs(10), || async {
        let seen = stack::emulator().requests_matching(&slow).len();
        if seen == 2 { Ok(()) } else { Err(format!("{seen} at FAL")) }
    })
    .await;
    assert_eq!(client.get("/api/usage").expect(200).await["in_flight"], 2);
    let third = client.generate(&try_on(&marker())).send().await;
    third.assert_error(429, "too_many_concurrent");
    assert_eq!(third.header("retry-after"), Some("5"));
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(second.await.unwrap().status, 200);
    client.wait_until_settled().await;
    client.generate(&try_on(&marker())).expect(200).await;
}

#[tokio::test]
async fn a_refused_generation_takes_nothing_from_the_other_limits() {
    let client = client_with(json!({ "rate_limit_per_minute": 2, "max_concurrent": 1, "usage_limit": 2 })).await;
    let t = at("2031-05-20T10:00:00Z");
    let slow = marker();
    inject_after(&slow, FaultMode::Slow, 1500);
    let first = {
        let client = client.clone();
        let body = try_on(&slow);
        tokio::spawn(async move { client.generate(&body).header("x-test-now", &header(t)).send().await })
    };
    wait_until("the first generation at FAL", Duration::from_secs(10), || async {
        if stack::emulator().requests_matching(&slow).len() == 1 { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
    // Refused for concurrency, twice: neither takes a rate token nor a unit of quota...
    for _ in 0..2 {
        generate_at(&client, t).await.assert_error(429, "too_many_concurrent");
    }
    assert_eq!(first.await.unwrap().status, 200);
    client.wait_until_settled().await;
    // ...so the second token and the second unit are still there.
    let second = generate_at(&client, t).await;
    assert_eq!(second.status, 200, "{}", second.text);
    generate_at(&client, t).await.assert_error(429, "quota_exceeded");
}

#[tokio::test]
async fn one_clients_burst_does_not_touch_another() {
    let a = client_with(json!({ "rate_limit_per_minute": 2 })).await;
    let b = client_with(json!({ "rate_limit_per_minute": 2 })).await;
    let replies = burst(&a, 4).await;
    assert_eq!(count(&replies, 429, Some("rate_limited")), 2);
    let b_replies = burst(&b, 2).await;
    assert_eq!(count(&b_replies, 200, None), 2);
}

#[tokio::test]
async fn admin_changes_apply_on_the_next_request() {
    let admin = Api::shared().login().await;
    let client = client_with(json!({ "rate_limit_per_minute": 1, "usage_limit": 2 })).await;
    let path = format!("/admin/clients/{}", client.id);
    client.generate(&try_on(&marker())).expect(200).await;
    client.generate(&try_on(&marker())).send().await.assert_error(429, "rate_limited");

    admin.patch(&path).json(&json!({ "rate_limit_per_minute": 100 })).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
    client.generate(&try_on(&marker())).send().await.assert_error(429, "quota_exceeded");

    admin.patch(&path).json(&json!({ "usage_limit": 3 })).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;

    admin.patch(&path).json(&json!({ "active": false })).expect(200).await;
    client.generate(&try_on(&marker())).send().await.assert_error(403, "client_inactive");
}

#[tokio::test]
async fn refused_credentials_and_origins_never_consume_quota_or_rate() {
    let admin = Api::shared().login().await;
    let client = client_with(json!({ "usage_limit": 1, "rate_limit_per_minute": 1 })).await;
    let path = format!("/admin/clients/{}", client.id);
    admin.patch(&path).json(&json!({ "active": false })).expect(200).await;
    for _ in 0..3 {
        client.generate(&try_on(&marker())).send().await.assert_error(403, "client_inactive");
        // The status is decided before the origin: an inactive client is inactive from anywhere.
        client.generate(&try_on(&marker())).header("origin", "https://evil.example").send().await.assert_error(403, "client_inactive");
    }
    admin.patch(&path).json(&json!({ "active": true })).expect(200).await;
    for _ in 0..3 {
        client.generate(&try_on(&marker())).header("origin", "https://evil.example").send().await.assert_error(403, "origin_not_allowed");
    }
    let ok = client.generate(&try_on(&marker())).send().await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn usage_reports_this_month_for_the_calling_client() {
    let client = client_with(json!({ "usage_limit": 10, "rate_limit_per_minute": 30 })).await;
    client.generate(&try_on(&marker())).expect(200).await;
    let usage = client.wait_until_settled().await;
    let mut fields: Vec<&str> = usage.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["in_flight", "in_progress", "limit", "max_concurrent", "month", "rate_limit_burst", "rate_limit_per_minute", "remaining", "resets_at", "used"]);
    assert_eq!(usage["used"], 1);
    assert_eq!(usage["in_progress"], 0);
    assert_eq!(usage["in_flight"], 0);
    assert_eq!(usage["limit"], 10);
    assert_eq!(usage["remaining"], 9);
    assert_eq!(usage["rate_limit_per_minute"], 30);
    assert_eq!(usage["rate_limit_burst"], 30);
    assert_eq!(usage["max_concurrent"], 4);
    assert!(usage["resets_at"].as_str().unwrap().ends_with("-01T00:00:00.000Z"));
}

#[tokio::test]
async fn admins_export_monthly_usage_as_json_and_csv() {
    let admin = Api::shared().login().await;
    let name = format!("Invoice, \"Quoted\" {}", marker());
    let client = admin.create_client(json!({ "name": name })).await;
    client.generate(&try_on(&marker())).expect(200).await;
    let failing = marker();
    inject(&failing, FaultMode::Error500);
    client.generate(&try_on(&failing)).send().await;

    let month = chrono_month(now_ms());
    let report = admin.get(&format!("/admin/usage?month={month}")).expect(200).await;
    let row = report["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == client.id.as_str()).unwrap().clone();
    assert_eq!((row["successful_generations"].as_u64(), row["failed_generations"].as_u64()), (Some(1), Some(1)));

    let csv = admin.get(&format!("/admin/usage?month={month}")).header("accept", "text/csv").send().await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    // Every cell quoted, so spreadsheets that split on `;` keep the columns.
    assert!(csv.text.starts_with("\"month\",\"client_id\",\"name\",\"email\",\"successful_generations\",\"failed_generations\",\"usage_limit\"\r\n"));
    let quoted = name.replace('"', "\"\"");
    assert!(csv.text.contains(&format!("\"{month}\",\"{}\",\"{quoted}\",\"\",\"1\",\"1\",\"5000\"\r\n", client.id)), "{}", csv.text);
    let same = admin.get(&format!("/admin/usage?month={month}&format=csv")).send().await;
    assert!(same.text.contains(&client.id));

    admin.get("/admin/usage?month=2026-13").send().await.assert_error(400, "invalid_query");
    Api::shared().get("/admin/usage").send().await.assert_error(401, "not_logged_in");
}

fn chrono_month(ms: u64) -> String {
    let d = chrono::DateTime::from_timestamp_millis(ms as i64).unwrap();
    d.format("%Y-%m").to_string()
}
