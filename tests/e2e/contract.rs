//! The API against its own contract: Schemathesis reads `/openapi.json`
//! from a dedicated stack, generates requests for every operation (valid
//! and invalid, from a fixed seed so a failure reproduces), and checks that
//! no answer is a 5xx, every answer matches the document's schema for its
//! status, and none takes longer than `MAX_RESPONSE_S`.
//!
//! Nothing is excluded. The run holds an admin session and a client key
//! (with limits high enough that rate limits do not hide the rest), so it
//! reaches past authentication; its requests may log that session out or
//! rotate that key, after which it goes on as an unauthenticated caller,
//! which must keep the contract too.
//!
//! `FUZZ_EXAMPLES=N` changes the examples per operation (default below).

use crate::support::stack::{self, StackOptions};
use crate::support::Api;
use serde_json::json;
use std::time::Duration;

const SEED: &str = "20261130";
const EXAMPLES: &str = "20";
/// Generations call the emulator, which composes real PNGs.
const MAX_RESPONSE_S: &str = "5";

#[tokio::test]
async fn the_api_keeps_its_openapi_contract_under_fuzzing() {
    let bin = stack::root().join("target/venv-fuzz/bin/schemathesis");
    assert!(bin.exists(), "Schemathesis is missing: run scripts/setup.sh");
    let own = stack::start(StackOptions::default());
    let admin = Api::new(&own).login().await;
    let limits = json!({ "name": "Contract fuzzing", "rate_limit_per_minute": 100000, "max_concurrent": 1000, "usage_limit": 100000000 });
    let client = admin.create_client(limits).await;
    let examples = std::env::var("FUZZ_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into());
    let report = stack::root().join("target/schemathesis");
    let _ = std::fs::create_dir_all(&report);

    let mut command = tokio::process::Command::new(&bin);
    command
        .arg("run")
        .arg(format!("{}/openapi.json", own.base))
        .args(["--url", &own.base])
        .args(["--header", &format!("x-api-key: {}", client.key)])
        .args(["--header", &format!("cookie: {}", admin.cookie)])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-response-time", MAX_RESPONSE_S])
        .args(["--seed", SEED, "--generation-deterministic"])
        .args(["--max-examples", &examples])
        .args(["--workers", "2", "--request-timeout", "15"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .arg("--no-color")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(300), command.output()).await.expect("Schemathesis finished within 5 minutes");
    let output = run.expect("Schemathesis runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    std::fs::write(report.join("output.txt"), &text).ok();
    assert!(output.status.success(), "Schemathesis found contract violations (seed {SEED}):\n{text}");
}
