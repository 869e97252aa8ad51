//! The dashboard, in a real browser: tests/browser/dashboard.mjs drives
//! headless Chromium against this test run's stack.

use crate::support::stack::{self, ADMIN_PASSWORD};
use std::process::Command;

#[tokio::test]
async fn the_dashboard_shows_a_new_clients_generation() {
    let base = stack::shared().base.clone();
    let artifacts = stack::root().join("target/test-artifacts/dashboard");
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
        assert!(artifacts.join(format!("{page}.png")).exists(), "screenshot {page} saved");
    }
}
