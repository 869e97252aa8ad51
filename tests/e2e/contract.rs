//! The API against its own contract: Schemathesis reads `/openapi.json`
//! from a dedicated stack, generates requests for every operation (valid
//! and invalid, deterministically so a failure reproduces), and checks that
//! no answer is a 5xx; every answer's status, content type, headers and body
//! are the ones the document gives; and none takes longer than
//! `MAX_RESPONSE_S`. About 3,700 requests in 40 s.
//!
//! Nothing is excluded. The runs hold an admin session and a client key
//! (with limits high enough that rate limits do not hide the rest), so they
//! reach past authentication. `POST /admin/logout` gets a run of its own,
//! last: in the main run it would end the session in the first second and
//! leave every other admin operation tested only as "401".
//!
//! `FUZZ_EXAMPLES=N` changes the examples per operation (default below).

use crate::support::stack::{self, StackOptions};
use crate::support::Api;
use serde_json::json;
use std::time::Duration;

const SEED: &str = "20261130";
const EXAMPLES: &str = "100";
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

    let everything_but_logout = schemathesis(&bin, &own.base, &client.key, &admin.cookie, &examples, &report, &["--exclude-operation-id", "logout"]).await;
    let logout = schemathesis(&bin, &own.base, &client.key, &admin.cookie, &examples, &report, &["--include-operation-id", "logout", "--phases", "examples,coverage,fuzzing"]).await;
    for (name, (ok, text)) in [("main run", everything_but_logout), ("logout run", logout)] {
        std::fs::write(report.join(format!("{}.txt", name.replace(' ', "-"))), &text).ok();
        assert!(ok, "Schemathesis found contract violations in its {name} (seed {SEED}):\n{text}");
    }
}

/// One Schemathesis run; returns whether it passed, and what it printed.
async fn schemathesis(
    bin: &std::path::Path,
    base: &str,
    key: &str,
    cookie: &str,
    examples: &str,
    report: &std::path::Path,
    selection: &[&str],
) -> (bool, String) {
    let mut command = tokio::process::Command::new(bin);
    command
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args(["--header", &format!("x-api-key: {key}")])
        .args(["--header", &format!("cookie: {cookie}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance"])
        .args(["--max-response-time", MAX_RESPONSE_S])
        .args(["--seed", SEED, "--generation-deterministic"])
        .args(["--max-examples", examples])
        .args(["--workers", "2", "--request-timeout", "15"])
        .args(selection)
        .args(["--report", "junit", "--report-dir"])
        .arg(report)
        .arg("--no-color")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // Its cache folder lands beside the reports, not in the worktree.
        .current_dir(report)
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(240), command.output()).await.expect("Schemathesis finished within 4 minutes");
    let output = run.expect("Schemathesis runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}
