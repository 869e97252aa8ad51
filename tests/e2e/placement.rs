//! A client's limiter object is placed near the first request for it and
//! never moves: the operator's admin actions must not be that request, the
//! shop's first API request must (docs/operations.md §10).

use crate::support::stack::{self, StackOptions};
use crate::support::{marker, try_on, Api};
use serde_json::json;
use std::path::Path;

/// The limiter objects that hold anything: each is its own SQLite file.
fn limiter_objects(state_dir: &Path) -> usize {
    let dir = state_dir.join("v3/do/tryon-edge-RateLimiter");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sqlite") && !e.file_name().to_string_lossy().starts_with("metadata"))
        .count()
}

#[tokio::test]
async fn admin_actions_leave_the_limiter_to_the_clients_first_request_which_sees_them() {
    // Its own stack: the count of objects must be this test's alone.
    let own = stack::start(StackOptions::default());
    let admin = Api::new(&own).login().await;
    let before = limiter_objects(&own.state_dir);

    let client = admin.create_client(json!({ "name": format!("Placed {}", marker()), "usage_limit": 5 })).await;
    let path = format!("/admin/clients/{}", client.id);
    admin.patch(&path).json(&json!({ "usage_limit": 1 })).expect(200).await;
    admin.post(&format!("{path}/keys")).json(&json!({ "kind": "publishable" })).expect(201).await;
    assert_eq!(limiter_objects(&own.state_dir), before, "creating and changing a client creates no limiter object");

    // The first API request creates it, with every change made before.
    client.generate(&try_on(&marker())).expect(200).await;
    assert_eq!(limiter_objects(&own.state_dir), before + 1);
    client.generate(&try_on(&marker())).send().await.assert_error(429, "quota_exceeded");

    // From then on, changes reach it before the admin's answer.
    admin.patch(&path).json(&json!({ "usage_limit": 2 })).expect(200).await;
    client.generate(&try_on(&marker())).expect(200).await;
}
