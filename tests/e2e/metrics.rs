//! Generation events forwarded to the metrics back end, in the background.

use crate::support::metrics_sink::{sink, Mode};
use crate::support::stack;
use crate::support::{marker, try_on, Api};
use std::time::Instant;

#[tokio::test]
async fn every_generation_is_forwarded_as_an_event() {
    let client = Api::shared().login().await.new_client().await;
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap();
    let event = &sink().wait_for(id, 1, 10).await[0];
    assert_eq!(event["client_id"], client.id.as_str());
    assert_eq!(event["status"], "success");
    assert_eq!(event["endpoint"], "/api/images/generate");
    assert_eq!(event["metadata"]["model"], "fal-virtual-try-on");
    assert_eq!(event["metadata"]["garments_count"], 1);
    assert!(event["duration_total_ms"].as_u64().is_some() && event["timestamp"].as_u64().is_some());
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_the_client_never_notices() {
    let client = Api::shared().login().await.new_client().await;
    sink().set_mode(&client.id, Mode::Fail);
    let generated = client.generate(&try_on(&marker())).expect(200).await;
    let id = generated["generation_id"].as_str().unwrap();
    assert_eq!(sink().wait_for(id, 3, 15).await.len(), 3, "three attempts");
    assert_eq!(client.history().await.len(), 1);
}

#[tokio::test]
async fn a_stalled_receiver_does_not_delay_the_response() {
    let client = Api::shared().login().await.new_client().await;
    sink().set_mode(&client.id, Mode::Stall);
    let started = Instant::now();
    client.generate(&try_on(&marker())).expect(200).await;
    let took = started.elapsed().as_millis();
    // The receiver holds each delivery for 20 s; the response never waits for it.
    assert!(took < 3_000, "the response took {took} ms");
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
    let with_token = Api::new(&stack::production_like().stack).login().await.new_client().await;
    let id = with_token.generate(&crate::support::data_uri_try_on().await).expect(200).await["generation_id"].as_str().unwrap().to_string();
    sink().wait_for(&id, 1, 10).await;
    let expected = format!("Bearer {}", stack::METRICS_TOKEN);
    assert_eq!(sink().attempts(&id)[0].authorization.as_deref(), Some(expected.as_str()));

    // The shared stack has no METRICS_TOKEN.
    let without = Api::shared().login().await.new_client().await;
    let id = without.generate(&try_on(&marker())).expect(200).await["generation_id"].as_str().unwrap().to_string();
    sink().wait_for(&id, 1, 10).await;
    assert_eq!(sink().attempts(&id)[0].authorization, None);
}
