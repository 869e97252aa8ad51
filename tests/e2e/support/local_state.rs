//! A stopped stack's local state, changed as a developer would with
//! `wrangler d1 execute --local` and `wrangler kv key … --local` (a running
//! runtime holds its databases locked): for state the API cannot make in a
//! test's time, or that only an older release made.

use super::stack;
use std::path::Path;
use std::process::Command;

fn wrangler(state_dir: &Path, args: &[&str]) -> String {
    let out = Command::new("node")
        .arg(stack::root().join("node_modules/wrangler/bin/wrangler.js"))
        .args(args)
        .args(["--local", "--persist-to"])
        .arg(state_dir)
        .current_dir(stack::root())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .output()
        .expect("wrangler runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrangler {args:?} failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Runs `sql` on the stack's D1 (JSON results on stdout).
pub fn d1_execute(state_dir: &Path, sql: &str) -> String {
    wrangler(state_dir, &["d1", "execute", "DB", "--json", "--command", sql])
}

/// The value under `key` in the JOBS namespace.
pub fn kv_get(state_dir: &Path, key: &str) -> String {
    wrangler(state_dir, &["kv", "key", "get", key, "--binding", "JOBS", "--text"])
}

/// Writes `value` under `key` in the JOBS namespace.
pub fn kv_put(state_dir: &Path, key: &str, value: &str) {
    wrangler(state_dir, &["kv", "key", "put", key, value, "--binding", "JOBS"]);
}
