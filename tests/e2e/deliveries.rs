//! The delivery contract, end to end through the real local queue: retries
//! on the schedule until the receiver recovers (then exactly once more), the
//! dead-letter queue when it never does, every attempt in the log,
//! redelivery, event-type choices, the shop's own view, automatic pausing,
//! and the log's retention.

use crate::callbacks::QUIET;
use crate::support::receiver::{gaps, Receiver, Received};
use crate::support::stack::{self, Stack, StackOptions, EVENT_RETRY_DELAYS};
use crate::support::{inject, marker, try_on, Admin, Api, FaultMode, TestClient};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// Each gap between attempts is its delay moved by the ±20 % jitter (rounded
/// to whole seconds, as the queue takes them), plus up to the queue's 1-s
/// batch wait and the attempt's own work.
fn assert_spacing(arrivals: &[Received]) {
    for (i, (gap, delay)) in gaps(arrivals).into_iter().zip(EVENT_RETRY_DELAYS).enumerate() {
        let d = delay as f64;
        let (low, high) = ((d * 0.8).round().max(1.0) - 0.05, (d * 1.2).round() + 2.5);
        assert!(gap >= low && gap <= high, "gap {} was {gap:.2} s, expected {low}..{high} s for a {delay}-s delay", i + 1);
    }
}

fn statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect()
}

#[tokio::test]
async fn a_receiver_down_for_the_first_attempts_gets_the_event_exactly_once_after_recovery() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(3).await;
    let (client, secret) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    let job = client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;

    let arrivals = receiver.exactly(4, 40, QUIET).await;
    assert_eq!(arrivals.iter().map(|a| a.answered).collect::<Vec<_>>(), vec![500, 500, 500, 204]);
    let webhook_id = format!("msg_{}", job["id"].as_str().unwrap());
    for a in &arrivals {
        assert_eq!(a.header("webhook-id"), Some(webhook_id.as_str()), "one id on every attempt");
        assert_eq!(a.body, arrivals[0].body, "one body on every attempt");
        assert!(a.verifies(&secret), "each attempt is signed with its own timestamp: {a:?}");
    }
    assert_spacing(&arrivals);

    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().any(|d| d["status"] == "delivered")).await;
    let delivery = log.iter().find(|d| d["destination"] == "callback").unwrap();
    assert_eq!(delivery["event_type"], "job.completed");
    assert_eq!(delivery["webhook_id"], webhook_id);
    assert_eq!(delivery["attempt_count"], 4);
    assert_eq!(statuses(delivery), vec![json!(500), json!(500), json!(500), json!(204)]);
    let attempts = delivery["attempts"].as_array().unwrap();
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i as u64 + 1);
        assert_eq!(a["target"], receiver.url.as_str());
        assert!(a["latency_ms"].as_u64().is_some());
        assert_eq!(a["next_attempt_at"].is_string(), i < 3, "a next attempt time on each failure: {a}");
    }
    assert_eq!(attempts[0]["error"], "HTTP 500");
    assert!(delivery["delivered_at"].is_string() && delivery["next_attempt_at"].is_null());
}

#[tokio::test]
async fn a_receiver_that_never_recovers_ends_in_the_dead_letter_queue_with_every_attempt_logged() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;

    let attempts = EVENT_RETRY_DELAYS.len() + 1;
    let arrivals = receiver.exactly(attempts, 60, QUIET).await;
    assert!(arrivals.iter().all(|a| a.answered == 500));
    assert_spacing(&arrivals);

    let log = admin.wait_for_log(&client.id, 15, |l| l.iter().any(|d| d["dead_lettered_at"].is_string())).await;
    let delivery = log.iter().find(|d| d["destination"] == "callback").unwrap();
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempt_count"], attempts);
    assert_eq!(statuses(delivery), vec![json!(500); attempts]);
    let logged = delivery["attempts"].as_array().unwrap();
    assert!(logged[..attempts - 1].iter().all(|a| a["next_attempt_at"].is_string()));
    assert!(logged[attempts - 1]["next_attempt_at"].is_null(), "no attempt follows the last one");
    assert!(delivery["next_attempt_at"].is_null());
}

#[tokio::test]
async fn a_receiver_that_is_not_listening_is_logged_as_a_transport_error_and_retried() {
    let admin = Api::shared().login().await;
    let closed = format!("http://127.0.0.1:{}/hook", stack::free_port());
    let (client, _) = admin.client_with_callbacks(&closed, json!({})).await;
    client.generate(&try_on(&marker())).expect(200).await;
    let log = admin.wait_for_log(&client.id, 15, |l| {
        l.iter().any(|d| d["destination"] == "callback" && d["attempt_count"].as_u64() >= Some(2))
    })
    .await;
    let delivery = log.iter().find(|d| d["destination"] == "callback").unwrap();
    let first = &delivery["attempts"][0];
    assert!(first["status_code"].is_null(), "no answer, no status: {first}");
    assert!(first["error"].as_str().unwrap().starts_with("could not connect"), "{first}");
}

#[tokio::test]
async fn an_admin_redelivers_an_event_with_the_same_webhook_id_and_a_new_run() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(0).await;
    let (client, secret) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    client.generate(&try_on(&marker())).expect(200).await;
    receiver.wait_for(1, 15).await;
    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().any(|d| d["destination"] == "callback" && d["status"] == "delivered")).await;
    let delivery = log.iter().find(|d| d["destination"] == "callback").unwrap();
    let id = delivery["id"].as_str().unwrap();

    let redelivered = admin.post(&format!("/admin/deliveries/{id}/redeliver")).expect(202).await;
    assert_eq!((redelivered["status"].as_str(), redelivered["run"].as_u64()), (Some("pending"), Some(2)));
    let arrivals = receiver.exactly(2, 15, QUIET).await;
    assert_eq!(arrivals[0].header("webhook-id"), arrivals[1].header("webhook-id"), "the receiver can drop it as a duplicate");
    assert_eq!(arrivals[0].body, arrivals[1].body);
    assert!(arrivals[1].verifies(&secret));

    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().any(|d| d["id"] == id && d["status"] == "delivered" && d["run"] == 2)).await;
    let delivery = log.iter().find(|d| d["id"] == id).unwrap();
    let runs: Vec<Value> = delivery["attempts"].as_array().unwrap().iter().map(|a| a["run"].clone()).collect();
    assert_eq!(runs, vec![json!(1), json!(2)]);

    admin.post("/admin/deliveries/dlv_00000000000000000000/redeliver").send().await.assert_error(404, "not_found");
    client.post(&format!("/admin/deliveries/{id}/redeliver")).send().await.assert_error(401, "not_logged_in");
}

#[tokio::test]
async fn a_redelivery_supersedes_a_run_still_retrying() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    client.generate(&try_on(&marker())).expect(200).await;
    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().any(|d| d["destination"] == "callback")).await;
    let id = log.iter().find(|d| d["destination"] == "callback").unwrap()["id"].as_str().unwrap().to_string();

    // Redelivered during the old run's longest wait (the 4-s delay after its
    // third attempt); the receiver stays down, so both runs would go on
    // failing and retrying if the old one were not stopped.
    receiver.wait_for(3, 15).await;
    admin.post(&format!("/admin/deliveries/{id}/redeliver")).expect(202).await;

    // The new run's full schedule and nothing of the old run's remaining six attempts.
    let attempts = EVENT_RETRY_DELAYS.len() + 1;
    receiver.exactly(3 + attempts, 60, QUIET).await;
    let log = admin.wait_for_log(&client.id, 15, |l| l.iter().any(|d| d["id"] == id && d["dead_lettered_at"].is_string())).await;
    let delivery = log.iter().find(|d| d["id"] == id).unwrap();
    let runs: Vec<Value> = delivery["attempts"].as_array().unwrap().iter().map(|a| a["run"].clone()).collect();
    let mut expected = vec![json!(1); 3];
    expected.extend(vec![json!(2); attempts]);
    assert_eq!(runs, expected);
    assert_eq!((delivery["status"].as_str(), delivery["run"].as_u64()), (Some("failed"), Some(2)));
}

#[tokio::test]
async fn clients_receive_only_the_event_types_they_chose() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(0).await;
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({ "webhook_events": ["job.failed"] })).await;
    let shown = admin.get(&format!("/admin/clients/{}", client.id)).expect(200).await;
    assert_eq!(shown["webhook_events"], json!(["job.failed"]));

    client.generate(&try_on(&marker())).expect(200).await;
    let done = client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    wait_until_finished(&client, done["id"].as_str().unwrap()).await;
    let m = marker();
    inject(&m, FaultMode::ErrorAfterCompleted);
    let failed = client.post("/api/jobs").json(&try_on(&m)).expect(202).await;

    let arrivals = receiver.exactly(1, 15, QUIET).await;
    let payload = arrivals[0].json();
    assert_eq!((payload["type"].as_str(), &payload["data"]["id"]), (Some("job.failed"), &failed["id"]));
    let own = client.get("/api/deliveries").expect(200).await;
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "unwanted events are not even logged: {own}");

    admin.patch(&format!("/admin/clients/{}", client.id)).json(&json!({ "webhook_events": null })).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
    assert_eq!(receiver.wait_for(2, 15).await[1].json()["type"], "generation.completed", "null is every type again");
    admin
        .patch(&format!("/admin/clients/{}", client.id))
        .json(&json!({ "webhook_events": ["job.done"] }))
        .send()
        .await
        .assert_error(422, "invalid_webhook_events");
}

#[tokio::test]
async fn shops_list_their_own_callback_deliveries_filtered_and_paginated() {
    let admin = Api::shared().login().await;
    let receiver = Receiver::start(0).await;
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    let other = admin.new_client().await;
    client.generate(&try_on(&marker())).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
    client.post("/api/jobs").json(&try_on(&marker())).expect(202).await;
    receiver.wait_for(3, 20).await;
    admin.wait_for_log(&client.id, 10, |l| l.iter().filter(|d| d["destination"] == "callback" && d["status"] == "delivered").count() == 3).await;

    let all = client.get("/api/deliveries").expect(200).await["data"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3, "callbacks only, not the operators' metrics forwarding");
    assert!(all.iter().all(|d| d["destination"] == "callback" && d["client_id"] == client.id.as_str()));
    let completed = client.get("/api/deliveries?event_type=generation.completed").expect(200).await;
    assert_eq!(completed["data"].as_array().unwrap().len(), 2);
    assert_eq!(client.get("/api/deliveries?status=delivered").expect(200).await["data"].as_array().unwrap().len(), 3);
    assert_eq!(client.get("/api/deliveries?status=failed").expect(200).await["data"].as_array().unwrap().len(), 0);
    let first = client.get("/api/deliveries?limit=2").expect(200).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = client.get(&format!("/api/deliveries?limit=2&cursor={cursor}")).expect(200).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());

    client.get("/api/deliveries?status=lost").send().await.assert_error(400, "invalid_query");
    client.get("/api/deliveries?event_type=job.done").send().await.assert_error(400, "invalid_query");
    assert_eq!(other.get("/api/deliveries").expect(200).await["data"], json!([]), "another client sees none of them");
    client.api.get("/api/deliveries").send().await.assert_error(401, "missing_api_key");

    let metrics = admin.deliveries(&client.id, "event_type=generation.recorded").await;
    assert_eq!(metrics.len(), 3, "admins also see the metrics forwarding of the client's generations");
    assert!(metrics.iter().all(|d| d["destination"] == "metrics"));
}

async fn wait_until_finished(client: &TestClient, job_id: &str) {
    for _ in 0..150 {
        let job = client.get(&format!("/api/jobs/{job_id}")).expect(200).await;
        if job["status"] == "done" || job["status"] == "error" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {job_id} never finished");
}

/// A stack of its own whose clients are paused after 3 s of failures (a
/// day by default), and whose cron may run without touching other tests.
/// The delivery log's lifetime on this module's own stack (the default is 30 days).
const DELIVERY_LOG_DAYS: u64 = 10;

fn own_stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        stack::start(StackOptions {
            vars: vec![("CALLBACK_PAUSE_AFTER_SECONDS".into(), "3".into()), ("DELIVERY_LOG_DAYS".into(), DELIVERY_LOG_DAYS.to_string())],
            ..Default::default()
        })
    })
}

async fn own_admin() -> Admin {
    Api::new(own_stack()).login().await
}

#[tokio::test]
async fn a_client_failing_for_the_pause_period_is_paused_until_an_admin_resumes() {
    let admin = own_admin().await;
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    client.generate(&try_on(&marker())).expect(200).await;

    // Failing since the first attempt; the attempt 3 s or more later pauses.
    let log = admin.wait_for_log(&client.id, 30, |l| l.iter().any(|d| d["status"] == "paused")).await;
    let first = log.iter().find(|d| d["status"] == "paused").unwrap().clone();
    let tried = receiver.exactly(first["attempt_count"].as_u64().unwrap() as usize, 5, QUIET).await.len();
    assert!(tried >= 2, "paused after more than one failure, {tried} attempts");
    let path = format!("/admin/clients/{}", client.id);
    let shown = admin.get(&path).expect(200).await;
    assert!(shown["callbacks_paused_at"].is_string() && shown["callbacks_failing_since"].is_string(), "{shown}");

    // While paused, events are logged as paused and not attempted.
    receiver.set_down(false);
    client.generate(&try_on(&marker())).expect(200).await;
    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().filter(|d| d["status"] == "paused").count() == 2).await;
    assert!(log.iter().filter(|d| d["status"] == "paused").all(|d| d["destination"] == "callback"));
    assert_eq!(receiver.received().len(), tried, "nothing is sent while paused");
    let id = first["id"].as_str().unwrap();
    admin.post(&format!("/admin/deliveries/{id}/redeliver")).send().await.assert_error(409, "callbacks_paused");

    // Resumed, the paused events can be redelivered one by one.
    let resumed = admin.post(&format!("{path}/callbacks/resume")).expect(200).await;
    assert!(resumed["callbacks_paused_at"].is_null() && resumed["callbacks_failing_since"].is_null());
    for d in log.iter().filter(|d| d["status"] == "paused") {
        admin.post(&format!("/admin/deliveries/{}/redeliver", d["id"].as_str().unwrap())).expect(202).await;
    }
    receiver.exactly(tried + 2, 15, QUIET).await;
    admin.wait_for_log(&client.id, 10, |l| l.iter().filter(|d| d["destination"] == "callback").all(|d| d["status"] == "delivered")).await;
}

/// The dashboard says so loudly, with the way out: the "callbacks paused"
/// banner and its Resume button (`tests/browser/dashboard-paused.mjs`).
#[tokio::test]
async fn the_dashboard_shows_paused_callbacks_and_its_button_resumes_them() {
    let admin = own_admin().await;
    let receiver = Receiver::start(0).await;
    receiver.set_down(true);
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    client.generate(&try_on(&marker())).expect(200).await;
    admin.wait_for_log(&client.id, 30, |l| l.iter().any(|d| d["status"] == "paused")).await;
    let path = format!("/admin/clients/{}", client.id);
    assert!(admin.get(&path).expect(200).await["callbacks_paused_at"].is_string());

    let artifacts = stack::root().join("target/test-artifacts/dashboard-paused");
    let _ = std::fs::remove_dir_all(&artifacts);
    let run = std::process::Command::new("node")
        .arg(stack::root().join("tests/browser/dashboard-paused.mjs"))
        .current_dir(stack::root())
        .env("BASE_URL", &own_stack().base)
        .env("ADMIN_PASSWORD", stack::ADMIN_PASSWORD)
        .env("CLIENT_ID", &client.id)
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    assert!(run.status.success(), "browser test failed:\n{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let shown = admin.get(&path).expect(200).await;
    assert!(shown["callbacks_paused_at"].is_null() && shown["callbacks_failing_since"].is_null(), "resumed: {shown}");
    for shot in ["callbacks-paused", "callbacks-resumed"] {
        let bytes = std::fs::read(artifacts.join(format!("{shot}.png"))).unwrap_or_else(|e| panic!("screenshot {shot} missing: {e}"));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "screenshot {shot} is not a PNG");
    }
}

#[tokio::test]
async fn the_cron_deletes_deliveries_past_the_log_retention() {
    let admin = own_admin().await;
    let api = Api::new(own_stack());
    let receiver = Receiver::start(0).await;
    let (client, _) = admin.client_with_callbacks(&receiver.url, json!({})).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let days_ago = |days: u64| (now - days * 24 * 3600 * 1000).to_string();
    // This stack keeps the log DELIVERY_LOG_DAYS (10) days: a day past it goes, a day short of it stays.
    client.generate(&try_on(&marker())).header("x-test-now", &days_ago(DELIVERY_LOG_DAYS + 1)).expect(200).await;
    let kept_old = client.generate(&try_on(&marker())).header("x-test-now", &days_ago(DELIVERY_LOG_DAYS - 1)).expect(200).await;
    let recent = client.generate(&try_on(&marker())).expect(200).await;
    receiver.wait_for(3, 15).await;
    admin.wait_for_log(&client.id, 10, |l| l.iter().filter(|d| d["status"] == "delivered").count() == 6).await;

    let reply = api.get(&format!("/cdn-cgi/handler/scheduled?cron=17+*+*+*+*&time={now}")).send().await;
    assert!(reply.status < 300, "scheduled handler failed: {} {}", reply.status, reply.text);

    let log = admin.deliveries(&client.id, "limit=100").await;
    let mut kept: Vec<String> = log.iter().map(|d| d["webhook_id"].as_str().unwrap().to_string()).collect();
    kept.sort();
    let mut expected: Vec<String> = [&kept_old, &recent]
        .iter()
        .map(|g| g["generation_id"].as_str().unwrap().to_string())
        .flat_map(|id| [format!("msg_{id}"), id])
        .collect();
    expected.sort();
    assert_eq!(kept, expected, "only the generation past the log's 10 days lost its callback and metrics deliveries: {log:#?}");
}

/// The receiver example in the README, run as written: it verifies our
/// signatures, handles the event once, and drops a redelivery as a duplicate.
#[tokio::test]
async fn the_readme_receiver_example_verifies_and_deduplicates_our_deliveries() {
    let readme = std::fs::read_to_string(stack::root().join("README.md")).unwrap();
    let example = readme.split("**A receiver in Node**").nth(1).and_then(|rest| rest.split("```js\n").nth(1)).unwrap();
    let example = example.split("\n```").next().unwrap();
    let dir = stack::root().join("target/readme-receiver");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("receiver.mjs"), example).unwrap();

    let admin = Api::shared().login().await;
    let port = stack::free_port();
    let (client, secret) = admin.client_with_callbacks(&format!("http://127.0.0.1:{port}/"), json!({})).await;
    let log_path = dir.join(format!("{port}.log"));
    let mut node = std::process::Command::new("node")
        .arg(dir.join("receiver.mjs"))
        .env("TRYON_WEBHOOK_SECRET", &secret)
        .env("PORT", port.to_string())
        .stdout(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("node runs");
    let printed = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Listening before the first attempt is not needed: a refused connection is retried.
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap().to_string();
    let log = admin.wait_for_log(&client.id, 20, |l| l.iter().any(|d| d["destination"] == "callback" && d["status"] == "delivered")).await;
    let delivery = log.iter().find(|d| d["destination"] == "callback").unwrap();
    assert_eq!(delivery["last_status_code"], 204, "the example accepted our signature");
    admin.post(&format!("/admin/deliveries/{}/redeliver", delivery["id"].as_str().unwrap())).expect(202).await;
    admin.wait_for_log(&client.id, 20, |l| l.iter().any(|d| d["destination"] == "callback" && d["status"] == "delivered" && d["run"] == 2)).await;
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let forged = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", now_s)
        .header("webhook-signature", "v1,bm90IG91ciBzaWduYXR1cmUgYXQgYWxsIG5vdCBvdXJz")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401, "a forged event is refused");
    let _ = node.kill();
    let _ = node.wait();
    assert_eq!(printed().matches(&format!("generation {id}")).count(), 1, "handled once: {}", printed());
}
