//! The dashboard, in a real browser: tests/browser/dashboard.mjs drives
//! headless Chromium against this test run's stack.

use crate::support::stack::{self, ADMIN_PASSWORD};
use std::process::Command;
use std::time::SystemTime;

#[tokio::test]
async fn the_dashboard_shows_a_new_clients_generation() {
    let base = stack::shared().base.clone();
    let artifacts = stack::root().join("target/test-artifacts/dashboard");
    // Screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    let started = SystemTime::now();
    let output = Command::new("node")
        .arg(stack::root().join("tests/browser/dashboard.mjs"))
        .current_dir(stack::root())
        .env("BASE_URL", &base)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("EMULATOR_URL", stack::emulator().url())
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for page in ["01-login", "02-overview", "03-clients-new-key", "04-client", "05-overview-after"] {
        let path = artifacts.join(format!("{page}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("screenshot {page} missing: {e}"));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000, "screenshot {page} is not a real PNG");
        let written = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
        assert!(written >= started, "screenshot {page} is older than this run");
    }
}
