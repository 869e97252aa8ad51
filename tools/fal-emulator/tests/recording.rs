//! What the emulator records for tests: the lifecycle header, and when each
//! webhook attempt happened.

mod support;

use axum::http::StatusCode;
use fal_emulator::LIFECYCLE_HEADER;
use std::time::Duration;
use support::*;

const ONE_HOUR: &str = r#"{"expiration_duration_seconds":3600}"#;

#[tokio::test]
async fn the_lifecycle_preference_is_recorded_with_each_call() {
    let emulator = start().await;
    let input = try_on_input(&emulator, "kept-an-hour");
    let sync = client()
        .post(format!("{}/{TRY_ON}", emulator.url()))
        .header("authorization", KEY)
        .header("X-Fal-Object-Lifecycle-Preference", ONE_HOUR)
        .body(input.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 200);
    assert_eq!(emulator.requests_matching("kept-an-hour")[0].lifecycle.as_deref(), Some(ONE_HOUR));

    let submitted = submit(&emulator, &try_on_input(&emulator, "no-preference"), None).await;
    assert_eq!(emulator.requests_matching("no-preference")[0].lifecycle, None);
    let status_url = submitted["status_url"].as_str().unwrap();
    client().get(status_url).header("authorization", KEY).header(LIFECYCLE_HEADER, ONE_HOUR).send().await.unwrap();
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(emulator.calls_to(&format!("{id}/status"))[0].lifecycle.as_deref(), Some(ONE_HOUR));
}

/// A receiver that refuses every webhook with a 500, so FAL retries.
async fn failing_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn webhook_attempts_are_timestamped_so_their_spacing_shows() {
    let emulator = start().await;
    let hook = failing_receiver().await;
    let submitted = submit(&emulator, &try_on_input(&emulator, "retried"), Some(&hook)).await;
    let id = submitted["request_id"].as_str().unwrap();
    let mut attempts = Vec::new();
    for _ in 0..100 {
        attempts = emulator.deliveries(id);
        if attempts.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts.iter().map(|d| d.status).collect::<Vec<_>>(), [Some(500); 3]);
    let gaps: Vec<u64> = attempts.windows(2).map(|w| w[1].at_ms - w[0].at_ms).collect();
    assert!(gaps[0] >= 300 && gaps[1] >= 600, "FAL backs off between attempts: {gaps:?} ms");
    let now = fal_emulator::webhook::now_ms();
    assert!(attempts[0].at_ms <= now && now - attempts[0].at_ms < 10_000);
}
