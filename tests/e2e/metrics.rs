//! Generation events forwarded to the metrics back end through the events
//! queue: retried like callbacks, logged, never in the client's way.

use crate::callbacks::QUIET;
use crate::support::metrics_sink::{sink, Mode};
use crate::support::stack::{self, StackOptions, EVENT_RETRY_DELAYS};
use crate::support::{marker, try_on, Api};
use std::time::Instant;

#[tokio::test]
async fn every_generation_is_forwarded_as_an_event() {
    let client = Api::shared().login().await.new_client().await;
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap();
    let event = sink().exactly(id, 1, 10, QUIET).await[0].event.clone();
    assert_eq!(event["client_id"], client.id.as_str());
    assert_eq!(event["status"], "success");
    assert_eq!(event["endpoint"], "/api/images/generate");
    assert_eq!(event["metadata"]["model"], "fal-virtual-try-on");
    assert_eq!(event["metadata"]["garments_count"], 1);
    assert!(event["duration_total_ms"].as_u64().is_some() && event["timestamp"].as_u64().is_some());
}

#[tokio::test]
async fn metrics_forwarding_survives_an_outage_of_the_endpoint() {
    let admin = Api::shared().login().await;
    let client = admin.new_client().await;
    sink().set_mode(&client.id, Mode::FailFirst(3));
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap();

    let arrivals = sink().exactly(id, 4, 40, QUIET).await;
    assert_eq!(arrivals.iter().map(|a| a.answered).collect::<Vec<_>>(), vec![503, 503, 503, 204]);
    for (i, (pair, delay)) in arrivals.windows(2).zip(EVENT_RETRY_DELAYS).enumerate() {
        let (gap, d) = (pair[1].at.duration_since(pair[0].at).as_secs_f64(), delay as f64);
        assert!(gap >= (d * 0.8).round().max(1.0) - 0.05 && gap <= (d * 1.2).round() + 2.5, "gap {} was {gap:.2} s", i + 1);
    }
    let log = admin.wait_for_log(&client.id, 10, |l| l.iter().any(|d| d["status"] == "delivered")).await;
    let delivery = &log[0];
    assert_eq!((delivery["destination"].as_str(), delivery["event_type"].as_str()), (Some("metrics"), Some("generation.recorded")));
    assert_eq!(delivery["attempt_count"], 4);
    assert_eq!(client.history().await.len(), 1, "the client never noticed");
}

/// On a stack of its own: locally the queue hands out one batch at a time,
/// so a receiver that holds the connection would hold everyone's deliveries.
#[tokio::test]
async fn a_stalled_receiver_is_cut_off_at_the_timeout_and_never_delays_generations() {
    let own = stack::start(StackOptions::default());
    let admin = Api::new(&own).login().await;
    let client = admin.new_client().await;
    sink().set_mode(&client.id, Mode::Stall);
    let started = Instant::now();
    client.generate(&try_on(&marker())).expect(200).await;
    let took = started.elapsed().as_millis();
    assert!(took < 3_000, "the response took {took} ms");

    let log = admin.wait_for_log(&client.id, 30, |l| l.first().is_some_and(|d| d["attempt_count"] == 1)).await;
    let attempt = &log[0]["attempts"][0];
    assert_eq!(attempt["error"], "no answer within 10000 ms");
    assert!(attempt["status_code"].is_null());
    let latency = attempt["latency_ms"].as_u64().unwrap();
    assert!((10_000..13_000).contains(&latency), "cut off at the timeout, not later: {latency} ms");
    assert_eq!(log[0]["status"], "retrying");
}

#[tokio::test]
async fn a_receiver_that_is_down_does_not_affect_generations() {
    // The maintenance stack's METRICS_ENDPOINT points at a port nobody listens
    // on. (Its session lives 40 days ahead, out of reach of the crons run there.)
    let ahead = crate::support::clock::now_ms() + 40 * crate::support::clock::DAY;
    let client = Api::new(stack::maintenance()).login_at(ahead).await.new_client().await;
    client.generate(&try_on(&marker())).expect(200).await;
    assert_eq!(client.history().await.len(), 1);
}

#[tokio::test]
async fn events_carry_metrics_token_as_a_bearer_token_and_nothing_without_it() {
    // Its own stack: the production-like one sends events only over https,
    // and this sink is plain http on loopback.
    static TOKENED: std::sync::OnceLock<stack::Stack> = std::sync::OnceLock::new();
    let tokened = TOKENED.get_or_init(|| stack::start(StackOptions::default().var("METRICS_TOKEN", stack::METRICS_TOKEN)));
    let with_token = Api::new(tokened).login().await.new_client().await;
    let id = with_token.generate(&try_on(&marker())).expect(200).await["generation_id"].as_str().unwrap().to_string();
    sink().wait_for(&id, 1, 10).await;
    let expected = format!("Bearer {}", stack::METRICS_TOKEN);
    assert_eq!(sink().attempts(&id)[0].authorization.as_deref(), Some(expected.as_str()));

    // The shared stack has no METRICS_TOKEN.
    let without = Api::shared().login().await.new_client().await;
    let id = without.generate(&try_on(&marker())).expect(200).await["generation_id"].as_str().unwrap().to_string();
    sink().wait_for(&id, 1, 10).await;
    assert_eq!(sink().attempts(&id)[0].authorization, None);
}
