//! FAL's status stream: `GET …/requests/{id}/status/stream`.

mod support;

use fal_emulator::faults::FaultMode;
use support::*;

fn stream_url(submitted: &serde_json::Value) -> String {
    format!("{}/stream", submitted["status_url"].as_str().unwrap())
}

fn statuses(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["status"].as_str().unwrap()).collect()
}

/// A request waits 150 ms in the queue, so a stream opened at once sees
/// IN_QUEUE; a machine stalled for longer than that may start at
/// IN_PROGRESS, which these tests accept rather than flake.
fn starts_before_completion(statuses: &[&str]) -> bool {
    matches!(statuses.first(), Some(&"IN_QUEUE" | &"IN_PROGRESS"))
}

#[tokio::test]
async fn the_stream_sends_each_phase_and_closes_after_completed() {
    let emulator = start().await;
    // Slow keeps it IN_PROGRESS long enough for the stream to see that phase.
    fault(&emulator, "phases", FaultMode::Slow, 300, None);
    let submitted = submit(&emulator, &try_on_input(&emulator, "phases"), None).await;
    let response = get(&stream_url(&submitted)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = read_events(response).await;
    let seen = statuses(&events);
    assert!(starts_before_completion(&seen), "{seen:?}");
    assert_eq!(seen[seen.len() - 2..], ["IN_PROGRESS", "COMPLETED"], "{seen:?}");
    if seen[0] == "IN_QUEUE" {
        assert_eq!(events[0]["queue_position"], 0);
    }
    assert_eq!(events.last().unwrap()["response_url"], submitted["response_url"]);
}

#[tokio::test]
async fn each_event_is_the_json_the_status_url_returns() {
    let emulator = start().await;
    let submitted = submit(&emulator, &try_on_input(&emulator, "same-json"), None).await;
    wait_until_completed(&submitted).await;
    let polled = json_of(get(submitted["status_url"].as_str().unwrap()).await).await;
    let events = read_events(get(&stream_url(&submitted)).await).await;
    assert_eq!(events, [polled], "a finished request streams COMPLETED at once, then closes");
}

#[tokio::test]
async fn status_and_stream_calls_are_counted_apart() {
    let emulator = start().await;
    let submitted = submit(&emulator, &try_on_input(&emulator, "counted"), None).await;
    let id = submitted["request_id"].as_str().unwrap();
    read_events(get(&stream_url(&submitted)).await).await;
    get(submitted["status_url"].as_str().unwrap()).await;
    get(submitted["status_url"].as_str().unwrap()).await;
    assert_eq!(emulator.stream_calls(id), 1);
    assert_eq!(emulator.status_calls(id), 2);
    assert!(emulator.calls_to(&format!("{id}/status/stream")).iter().all(|c| c.authorized));
}

#[tokio::test]
async fn the_stream_needs_the_key() {
    let emulator = start().await;
    let submitted = submit(&emulator, &try_on_input(&emulator, "no-key"), None).await;
    let response = client().get(stream_url(&submitted)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let id = submitted["request_id"].as_str().unwrap();
    assert_eq!(emulator.stream_calls(id), 1, "refused calls are recorded too");
    assert!(!emulator.calls_to(&format!("{id}/status/stream"))[0].authorized);
}

#[tokio::test]
async fn the_stream_of_an_unknown_request_is_not_found() {
    let emulator = start().await;
    let url = format!("{}/queue/fal-ai/image-apps-v2/requests/nope/status/stream", emulator.url());
    assert_eq!(get(&url).await.status(), 404);
}

#[tokio::test]
async fn a_dropped_stream_ends_after_its_first_event_and_polling_still_works() {
    let emulator = start().await;
    fault(&emulator, "dropped", FaultMode::StreamDrop, 0, None);
    fault(&emulator, "dropped", FaultMode::Slow, 300, None);
    let submitted = submit(&emulator, &try_on_input(&emulator, "dropped"), None).await;
    let events = read_events(get(&stream_url(&submitted)).await).await;
    let seen = statuses(&events);
    assert!(seen.len() == 1 && starts_before_completion(&seen), "no COMPLETED, so the client must poll: {seen:?}");
    wait_until_completed(&submitted).await;
    let result = get(submitted["response_url"].as_str().unwrap()).await;
    assert_eq!(result.status(), 200);
}

#[tokio::test]
async fn a_canceled_request_streams_completed() {
    let emulator = start().await;
    // Slow keeps it cancelable however long the test takes to get there.
    fault(&emulator, "canceled", FaultMode::Slow, 5_000, None);
    let submitted = submit(&emulator, &try_on_input(&emulator, "canceled"), None).await;
    let stream = get(&stream_url(&submitted)).await;
    let cancel_url = submitted["cancel_url"].as_str().unwrap();
    let canceled = client().put(cancel_url).header("authorization", KEY).send().await.unwrap();
    assert_eq!(canceled.status(), 202);
    let events = read_events(stream).await;
    let seen = statuses(&events);
    assert!(starts_before_completion(&seen) && seen.last() == Some(&"COMPLETED"), "{seen:?}");
}
