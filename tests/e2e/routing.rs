use crate::support::Api;

#[tokio::test]
async fn health_answers_ok() {
    let body = Api::shared().get("/health").expect(200).await;
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    Api::shared().get("/api/nothing-here").send().await.assert_error(404, "not_found");
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow() {
    let reply = Api::shared().get("/api/images/generate").send().await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[tokio::test]
async fn api_responses_are_not_cached_or_sniffed() {
    let reply = Api::shared().get("/health").send().await;
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(reply.header("content-type").unwrap().starts_with("application/json"));
}

/// The memory measurement (`scripts/bench.sh memory`) reads this header;
/// a deployed environment never sends it
/// (`environments::a_deployed_environment_ignores_the_test_clock_loopback_images_and_loopback_csp`).
#[tokio::test]
async fn development_answers_report_the_wasm_memory_size() {
    let reply = Api::shared().get("/health").send().await;
    let bytes: u64 = reply.header("x-wasm-memory-bytes").expect("sent under ENVIRONMENT=development").parse().unwrap();
    assert!(bytes > 0 && bytes % 65_536 == 0, "whole wasm pages: {bytes}");
}
