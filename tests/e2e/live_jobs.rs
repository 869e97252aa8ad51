//! Live job state in the client's object: status streams (SSE), one FAL
//! follower per job however many readers, KV's per-key write rate, and
//! attempts that complete even when the shopper goes away.

use crate::support::receiver::Receiver;
use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, Api, Fault, FaultMode, TestClient};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn fault(m: &str, mode: FaultMode, delay_ms: u64) {
    stack::emulator().add_fault(Fault { pattern: m.to_string(), mode, delay_ms, times: None });
}

#[derive(Debug, Clone)]
struct Event {
    id: u64,
    name: String,
    data: Value,
}

/// Reads a status stream until it ends (or panics after `secs`): its events.
async fn read_stream(client: &TestClient, job: &str, last_event_id: Option<u64>, secs: u64) -> Vec<Event> {
    let mut request = reqwest::Client::new().get(format!("{}/api/jobs/{job}/events", client.api.base)).header("x-api-key", &client.key);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.expect("the worker answers");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut response = response;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => break, // the server ended the stream
            Ok(Err(e)) => panic!("the stream of {job} failed: {e}; got so far: {text}"),
            Err(_) => panic!("the stream of {job} did not end within {secs} s; got so far: {text}"),
        }
    }
    parse(&text)
}

fn parse(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string));
            Some(Event { id: field("id")?.parse().ok()?, name: field("event")?, data: serde_json::from_str(&field("data")?).ok()? })
        })
        .collect()
}

async fn create(client: &TestClient, m: &str) -> String {
    let job = client.post("/api/jobs").json(&try_on(m)).expect(202).await;
    job["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_status_stream_sees_queued_then_processing_then_done_and_ends() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    fault(&m, FaultMode::SlowQueue, 1_500);
    fault(&m, FaultMode::Slow, 1_500);
    let id = create(&client, &m).await;
    let events = read_stream(&client, &id, None, 20).await;
    let mut names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    names.dedup(); // a queued job may report its place in the queue more than once
    assert_eq!(names, vec!["queued", "processing", "done"], "{events:?}");
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids increase: {events:?}");
    let done = &events[2].data;
    assert_eq!((done["id"].as_str(), done["status"].as_str()), (Some(id.as_str()), Some("done")));
    assert_eq!(done, &client.get(&format!("/api/jobs/{id}")).expect(200).await, "the last event is the job as it reads");
}

#[tokio::test]
async fn resuming_with_last_event_id_skips_what_was_seen() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    let id = create(&client, &m).await;
    let all = read_stream(&client, &id, None, 20).await;
    let last = all.last().expect("a final event").clone();
    assert_eq!(last.name, "done");
    assert!(read_stream(&client, &id, Some(last.id), 10).await.is_empty(), "nothing newer than the last event seen");
    let again = read_stream(&client, &id, Some(last.id - 1), 10).await;
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![last.id], "only what is newer");
}

#[tokio::test]
async fn many_readers_of_one_job_ask_fal_once_per_interval_at_most() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    fault(&m, FaultMode::SlowQueue, 2_000);
    fault(&m, FaultMode::Slow, 4_000);
    fault(&m, FaultMode::WebhookNever, 0);
    let started = Instant::now();
    let id = create(&client, &m).await;
    let streams: Vec<_> = (0..4).map(|_| {
        let (client, id) = (client.clone(), id.clone());
        tokio::spawn(async move { read_stream(&client, &id, None, 30).await })
    }).collect();
    let pollers: Vec<_> = (0..4).map(|_| {
        let (client, id) = (client.clone(), id.clone());
        tokio::spawn(async move {
            loop {
                let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
                if job["status"] == "done" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    }).collect();
    for s in streams {
        assert_eq!(s.await.unwrap().last().map(|e| e.name.clone()).as_deref(), Some("done"));
    }
    for p in pollers {
        p.await.unwrap();
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let request = stack::emulator().queued_request_ids(&m)[0].clone();
    let (streamed, polled) = (stack::emulator().stream_calls(&request), stack::emulator().status_calls(&request));
    assert_eq!(streamed, 1, "one follower of FAL's status stream for four readers");
    assert!(polled as u64 <= elapsed_ms / 3_000 + 1, "{polled} status polls in {elapsed_ms} ms (at most one per 3 s)");
}

#[tokio::test]
async fn a_dropped_fal_stream_falls_back_to_polling_and_still_ends() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    fault(&m, FaultMode::StreamDrop, 0);
    fault(&m, FaultMode::WebhookNever, 0);
    fault(&m, FaultMode::Slow, 1_000);
    let id = create(&client, &m).await;
    let events = read_stream(&client, &id, None, 30).await;
    assert_eq!(events.last().map(|e| e.name.as_str()), Some("done"), "{events:?}");
    let request = stack::emulator().queued_request_ids(&m)[0].clone();
    assert!(stack::emulator().status_calls(&request) >= 1, "the follower polled after the stream dropped");
}

#[tokio::test]
async fn a_job_ending_within_kvs_write_window_still_ends_settles_and_calls_back_once() {
    // Production KV refuses a second write to a key within a second; this
    // stack's KV does too. FAL's webhook lands well within that second.
    let own = stack::start(StackOptions { vars: vec![("EMULATE_KV_WRITE_LIMIT".into(), "true".into())], ..Default::default() });
    let admin = Api::new(&own).login().await;
    let client = admin.new_client().await;
    let receiver = Receiver::start(0).await;
    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_url": receiver.url })).expect(200).await;
    let m = marker();
    let id = create(&client, &m).await;
    let request = stack::emulator().queued_request_ids(&m)[0].clone();
    let deliveries = wait_for_webhook(&request).await;
    assert_eq!(deliveries, vec![Some(200)], "the first webhook was accepted, not failed on KV");
    let job = client.get(&format!("/api/jobs/{id}")).expect(200).await;
    assert_eq!(job["status"], "done");
    assert_eq!(client.wait_until_settled().await["used"], 1);
    let calls = receiver.wait_for(1, 10).await;
    assert_eq!(serde_json::from_str::<Value>(&calls[0].body).unwrap()["data"]["status"], "done");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(receiver.received().len(), 1, "called back exactly once");
    assert_eq!(client.history().await.len(), 1);
}

async fn wait_for_webhook(request: &str) -> Vec<Option<u16>> {
    for _ in 0..100 {
        let d: Vec<Option<u16>> = stack::emulator().deliveries(request).iter().map(|d| d.status).collect();
        if !d.is_empty() {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no webhook delivery for {request}");
}

#[tokio::test]
async fn a_shopper_who_disconnects_mid_generation_still_has_the_attempt_recorded_and_settled() {
    let client = Api::shared().login().await.new_client().await;
    let m = marker();
    fault(&m, FaultMode::Slow, 1_500);
    let gone = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let sent = gone
        .post(format!("{}/api/images/generate", client.api.base))
        .header("x-api-key", &client.key)
        .json(&try_on(&m))
        .send()
        .await;
    assert!(sent.is_err(), "the client hung up before FAL answered");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let history = client.history().await;
        if history.len() == 1 {
            assert_eq!(history[0]["status"], "success");
            break;
        }
        assert!(Instant::now() < deadline, "the attempt was never recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let usage = client.wait_until_settled().await;
    assert_eq!((usage["used"].as_u64(), usage["in_progress"].as_u64()), (Some(1), Some(0)));
}

/// A stream says it is alive every 15 s while nothing changes, and ends at
/// its bound even if the job has not (README: five minutes by default;
/// `STATUS_STREAM_MAX_SECONDS` shortens it). Ends are checked on the same
/// 15-second tick, so a 20-second bound ends the stream after 30 s at most.
#[tokio::test]
async fn a_quiet_stream_keeps_alive_every_15_seconds_and_ends_at_its_bound() {
    let own = stack::start(StackOptions::default().var("STATUS_STREAM_MAX_SECONDS", 20));
    let client = Api::new(&own).login().await.new_client().await;
    let m = marker();
    fault(&m, FaultMode::SlowQueue, 90_000);
    fault(&m, FaultMode::WebhookNever, 0);
    let id = create(&client, &m).await;
    let opened = Instant::now();
    let mut response = reqwest::Client::new()
        .get(format!("{}/api/jobs/{id}/events", client.api.base))
        .header("x-api-key", &client.key)
        .send()
        .await
        .expect("the worker answers");
    assert_eq!(response.status(), 200);
    let (mut text, mut keep_alives) = (String::new(), Vec::new());
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(60), response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let chunk = String::from_utf8_lossy(&chunk).to_string();
                if chunk.contains(": keep-alive") {
                    keep_alives.push(opened.elapsed());
                }
                text.push_str(&chunk);
            }
            Ok(Ok(None)) => break opened.elapsed(),
            other => panic!("the stream neither ended nor kept alive within 60 s ({other:?}); got: {text}"),
        }
    };
    let first = *keep_alives.first().unwrap_or_else(|| panic!("no keep-alive comment in {ended:?}: {text}"));
    assert!((Duration::from_secs(14)..Duration::from_secs(20)).contains(&first), "first keep-alive after {first:?}");
    assert!((Duration::from_secs(20)..Duration::from_secs(35)).contains(&ended), "the stream ended after {ended:?}");
    let events = parse(&text);
    assert!(events.iter().all(|e| e.name == "queued"), "the job never moved: {events:?}");
    // The job itself goes on; a new stream picks it up where this one left off.
    assert_eq!(client.get(&format!("/api/jobs/{id}")).expect(200).await["status"], "queued");
}

/// docs: a job the client's object does not have (created before the object
/// kept jobs) is read from its KV copy, and when that copy is still
/// unfinished, its end comes from its D1 row. Such jobs are written into a
/// stopped stack's KV and D1 as that release left them.
#[tokio::test]
async fn a_job_only_kv_knows_is_read_from_its_copy_and_its_end_from_d1() {
    use crate::support::fal_webhooks::unknown_job_id;
    use crate::support::local_state::{d1_execute, kv_get, kv_put};
    let first = stack::start(StackOptions::default());
    let client = Api::new(&first).login().await.new_client().await;
    let id = create(&client, &marker()).await;
    let path = format!("/api/jobs/{id}");
    crate::support::wait_until("the job to end", Duration::from_secs(20), || async {
        let job = client.get(&path).expect(200).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the KV copy is written after the answer
    let state_dir = first.stop();
    let copy: Value = serde_json::from_str(&kv_get(&state_dir, &format!("job:{id}"))).expect("the job's KV copy");
    let unfinished = |new_id: &str| {
        let mut job = copy.clone();
        job["id"] = json!(new_id);
        job["status"] = json!("queued");
        for field in ["completed_at", "fal_end", "image_url", "fal"] {
            job[field] = Value::Null;
        }
        job.to_string()
    };
    // One whose copy went stale (D1 has its row), one whose copy is all there is.
    let (stale, only) = (unknown_job_id(), unknown_job_id());
    kv_put(&state_dir, &format!("job:{stale}"), &unfinished(&stale));
    kv_put(&state_dir, &format!("job:{only}"), &unfinished(&only));
    d1_execute(
        &state_dir,
        &format!(
            "CREATE TABLE test_row AS SELECT * FROM generations WHERE job_id = '{id}';
             UPDATE test_row SET id = 'gen_' || substr('{stale}', 5), job_id = '{stale}';
             INSERT INTO generations SELECT * FROM test_row;
             DROP TABLE test_row;"
        ),
    );

    let second = stack::start(StackOptions { state_dir: Some(state_dir), ..Default::default() });
    let client = TestClient { api: Api::new(&second), ..client };
    let read = client.get(&format!("/api/jobs/{stale}")).expect(200).await;
    assert_eq!((read["id"].as_str(), read["status"].as_str()), (Some(stale.as_str()), Some("done")), "its end from D1: {read}");
    let read = client.get(&format!("/api/jobs/{only}")).expect(200).await;
    assert_eq!((read["id"].as_str(), read["status"].as_str()), (Some(only.as_str()), Some("queued")), "as its copy says: {read}");
    // Another client cannot read them.
    let other = Api::new(&second).login().await.new_client().await;
    other.get(&format!("/api/jobs/{only}")).send().await.assert_error(404, "not_found");
}
