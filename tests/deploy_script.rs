//! `scripts/deploy.sh` as docs/operations.md §3 describes it: `--dry-run`
//! prints every step and command and runs none of them, on a machine with
//! only bash; a real run refuses placeholders, test conveniences and a
//! mismatched `ENVIRONMENT` in preflight, before it runs anything.
//!
//! No credential here is real and nothing reaches the network: `npx`,
//! `cargo` and `curl` are replaced on `PATH` by stubs that record their
//! arguments and fail, so a command the script should not have run shows
//! in the stub log (and could not have done anything).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const STUBBED: [&str; 3] = ["npx", "cargo", "curl"];

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    stubbed_calls: String,
}

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("deploy-script-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `root/scripts/deploy.sh args` with the stubs first on `PATH`, the
/// given extra variables, and nothing else from this process's environment.
fn deploy(root: &Path, scratch: &Scratch, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let stubs = scratch.0.join("stubs");
    fs::create_dir_all(&stubs).unwrap();
    let log = scratch.0.join("stubbed-calls.log");
    fs::write(&log, "").unwrap();
    for tool in STUBBED {
        let stub = stubs.join(tool);
        fs::write(&stub, format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexit 1\n", log.display())).unwrap();
        make_executable(&stub);
    }
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap_or_default());
    let home = scratch.0.join("home");
    fs::create_dir_all(&home).unwrap();
    run_script(root, args, &path, &home, vars, &log)
}

fn run_script(root: &Path, args: &[&str], path: &str, home: &Path, vars: &[(&str, &str)], log: &Path) -> Run {
    let output = Command::new("bash")
        .arg(root.join("scripts/deploy.sh"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .envs(vars.iter().copied())
        .current_dir(home)
        .output()
        .expect("bash runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stubbed_calls: fs::read_to_string(log).unwrap_or_default(),
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The lines of the preflight that name what will be deployed.
fn resolved_configuration(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("   worker ") || (l.starts_with("   D1 ") && l.contains("Durable Object migrations up to")))
        .collect()
}

/// A copy of the deploy script next to a `wrangler.toml` of our own (the
/// repository's, edited), with the repository's `node_modules` so node
/// resolves it with wrangler as a real run does. Nothing else is copied: a
/// script that wrongly ran `scripts/setup.sh` or `build.sh` finds neither,
/// and the repository is never touched.
fn project_with_config(scratch: &Scratch, edit: impl Fn(String) -> String) -> PathBuf {
    let root = scratch.0.join("project");
    fs::create_dir_all(root.join("scripts")).unwrap();
    for script in ["deploy.sh", "env.sh"] {
        fs::copy(Path::new(REPO).join("scripts").join(script), root.join("scripts").join(script)).unwrap();
    }
    let config = fs::read_to_string(Path::new(REPO).join("wrangler.toml")).unwrap();
    fs::write(root.join("wrangler.toml"), edit(config)).unwrap();
    std::os::unix::fs::symlink(Path::new(REPO).join("node_modules"), root.join("node_modules")).unwrap();
    root
}

/// The repository's configuration with every staging placeholder filled in.
fn without_placeholders(config: String) -> String {
    config
        .replace("\"REPLACE_ME\"", "\"0123456789abcdef0123456789abcdef\"")
        .replace("tryon.example", "tryon.invalid")
}

fn set_staging_var(config: String, line: &str) -> String {
    config.replace("[env.staging.vars]\n", &format!("[env.staging.vars]\n{line}\n"))
}

#[test]
fn a_dry_run_prints_every_step_and_command_and_runs_none_of_them() {
    let scratch = Scratch::new("dry-run");
    let root = project_with_config(&scratch, |config| config);
    let run = deploy(&root, &scratch, &["--env", "staging", "--dry-run"], &[]);

    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    for step in 1..=10 {
        assert!(run.stdout.contains(&format!("\n== [{step}/10] ")), "step {step} missing:\n{}", run.stdout);
    }
    for command in [
        "$ npx wrangler whoami",
        "$ npx wrangler d1 info DB --env staging",
        "$ npx wrangler queues info tryon-events-staging --env staging",
        "$ npx wrangler queues info tryon-events-dlq-staging --env staging",
        "$ npx wrangler r2 bucket info tryon-results-staging --env staging",
        "$ env SKIP_BROWSER=1 bash scripts/setup.sh",
        "$ bash scripts/build.sh",
        "$ cargo test --workspace --lib --bins",
        "$ npx wrangler deploy --dry-run --env staging --outdir target/deploy/staging/",
        "$ npx wrangler d1 time-travel info DB --env staging --json",
        "$ npx wrangler d1 migrations apply DB --remote --env staging",
        "$ npx wrangler versions upload ",
        "$ npx wrangler versions deploy <NEW_VERSION_ID>@10% <CURRENT_VERSION_ID>@90% --yes",
        "$ npx wrangler versions deploy <NEW_VERSION_ID>@100% --yes",
        "$ npx wrangler triggers deploy --env staging",
        "$ curl -fsS https://api-staging.tryon.example/health",
        "npx wrangler rollback <CURRENT_VERSION_ID> --env staging",
        "npx wrangler d1 time-travel restore DB --env staging --bookmark=<BOOKMARK>",
    ] {
        assert!(run.stdout.contains(command), "`{command}` not printed:\n{}", run.stdout);
    }
    assert!(run.stdout.ends_with("Dry run: nothing was installed, built, uploaded or changed.\n"));
    // The placeholders the repository ships are warned about, not refused.
    assert!(run.stderr.contains("placeholder still in wrangler.toml: d1_databases.0.database_id=REPLACE_ME"), "{}", run.stderr);
    assert_eq!(run.stubbed_calls, "", "a dry run ran commands");
    let bundle_dir = run.stdout.lines().find_map(|l| l.trim().strip_prefix("> ")).expect("an output file is named");
    assert!(!root.join(bundle_dir).parent().unwrap().exists(), "a dry run created {bundle_dir}");
}

#[test]
fn a_dry_run_needs_only_bash_and_reads_the_configuration_as_wrangler_does() {
    let scratch = Scratch::new("bare");
    // A machine with bash and the few utilities every system has: no node,
    // npm, git, cargo, rustup, curl or apt.
    let bin = scratch.0.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in ["bash", "dirname", "awk", "date", "sed"] {
        let found = Command::new("bash").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        let target = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(target.trim(), bin.join(tool)).unwrap();
    }
    let home = scratch.0.join("home");
    fs::create_dir_all(&home).unwrap();
    let log = scratch.0.join("unused.log");
    let root = project_with_config(&scratch, |config| config);
    let bare = run_script(&root, &["--dry-run"], bin.to_str().unwrap(), &home, &[], &log);

    assert_eq!(bare.code, Some(0), "stdout:\n{}\nstderr:\n{}", bare.stdout, bare.stderr);
    assert!(bare.stderr.contains("missing tools (a real deploy needs them): git node npm cargo rustup curl"), "{}", bare.stderr);
    assert!(bare.stdout.contains("configuration read from wrangler.toml by hand"));
    for step in 1..=10 {
        assert!(bare.stdout.contains(&format!("\n== [{step}/10] ")), "step {step} missing:\n{}", bare.stdout);
    }
    assert!(bare.stdout.ends_with("Dry run: nothing was installed, built, uploaded or changed.\n"));

    // The same worker, hostname, resources and migration tag as wrangler's own reading.
    let resolved = deploy(&root, &scratch, &["--dry-run"], &[]);
    assert!(!resolved.stdout.contains("by hand"));
    let by_hand = resolved_configuration(&bare.stdout);
    assert_eq!(by_hand.len(), 2, "{}", bare.stdout);
    assert_eq!(by_hand, resolved_configuration(&resolved.stdout));
}

#[test]
fn a_real_run_refuses_placeholders_before_running_anything() {
    let scratch = Scratch::new("placeholders");
    let root = project_with_config(&scratch, |config| config);
    // Credentials are set (fake) so that only the placeholders can stop it.
    let fake = [("CLOUDFLARE_API_TOKEN", "not-a-real-token"), ("CLOUDFLARE_ACCOUNT_ID", "0")];
    let run = deploy(&root, &scratch, &["--env", "staging"], &fake);

    assert_eq!(run.code, Some(1), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    for placeholder in [
        "placeholder: d1_databases.0.database_id=REPLACE_ME",
        "placeholder: kv_namespaces.0.id=REPLACE_ME",
        "placeholder: routes.0.pattern=api-staging.tryon.example",
        "placeholder: vars.PUBLIC_BASE_URL=https://api-staging.tryon.example",
    ] {
        assert!(run.stderr.contains(placeholder), "{placeholder} not named:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("ERROR: replace the placeholders in [env.staging] of wrangler.toml first"));
    assert!(!run.stdout.contains("$ "), "a command was started:\n{}", run.stdout);
    assert!(!run.stdout.contains("[2/10]"));
    assert_eq!(run.stubbed_calls, "");
}

#[test]
fn a_real_run_refuses_test_conveniences_or_another_environment_name_before_running_anything() {
    let fake = [("CLOUDFLARE_API_TOKEN", "not-a-real-token"), ("CLOUDFLARE_ACCOUNT_ID", "0")];
    let refused: [(&str, &str, &str); 3] = [
        ("test-clock", "TEST_CLOCK = \"true\"", "TEST_CLOCK / ALLOW_LOOPBACK_IMAGE_URLS are set for staging"),
        ("loopback", "ALLOW_LOOPBACK_IMAGE_URLS = \"true\"", "TEST_CLOCK / ALLOW_LOOPBACK_IMAGE_URLS are set for staging"),
        ("environment", "", "ENVIRONMENT is 'development' in [env.staging.vars]; it must be 'staging'"),
    ];
    for (name, extra_var, refusal) in refused {
        let scratch = Scratch::new(name);
        let root = project_with_config(&scratch, |config| {
            let config = without_placeholders(config);
            if extra_var.is_empty() {
                config.replace("ENVIRONMENT = \"staging\"", "ENVIRONMENT = \"development\"")
            } else {
                set_staging_var(config, extra_var)
            }
        });
        let run = deploy(&root, &scratch, &["--env", "staging"], &fake);
        assert_eq!(run.code, Some(1), "{name}: stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(&format!("ERROR: {refusal}")), "{name}:\n{}", run.stderr);
        assert!(!run.stdout.contains("$ "), "{name}: a command was started:\n{}", run.stdout);
        assert_eq!(run.stubbed_calls, "", "{name}");
    }

    // The same configuration without them passes the checks and goes on to
    // wrangler (stubbed: it fails), so the refusals above were theirs.
    let scratch = Scratch::new("clean");
    let root = project_with_config(&scratch, without_placeholders);
    let run = deploy(&root, &scratch, &["--env", "staging"], &fake);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.contains("$ npx wrangler whoami"), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.stubbed_calls, "npx wrangler whoami\n");
}

#[test]
fn a_real_run_refuses_a_malformed_signing_keys_before_running_anything() {
    let scratch = Scratch::new("signing-keys");
    let root = project_with_config(&scratch, without_placeholders);
    let short = ("SIGNING_KEYS", "k1:too-short");
    let fake = [("CLOUDFLARE_API_TOKEN", "not-a-real-token"), ("CLOUDFLARE_ACCOUNT_ID", "0"), short];
    let run = deploy(&root, &scratch, &["--env", "staging"], &fake);
    assert_eq!(run.code, Some(1), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("ERROR: SIGNING_KEYS must be comma-separated id:secret pairs"), "{}", run.stderr);
    assert!(!run.stdout.contains("$ "), "a command was started:\n{}", run.stdout);
    assert_eq!(run.stubbed_calls, "");

    // Two well-formed keys pass the check and reach wrangler (stubbed).
    let scratch = Scratch::new("signing-keys-ok");
    let root = project_with_config(&scratch, without_placeholders);
    let good = ("SIGNING_KEYS", "k2:0123456789abcdef0123456789abcdef, k1:fedcba9876543210fedcba9876543210");
    let fake = [("CLOUDFLARE_API_TOKEN", "not-a-real-token"), ("CLOUDFLARE_ACCOUNT_ID", "0"), good];
    let run = deploy(&root, &scratch, &["--env", "staging"], &fake);
    assert!(run.stdout.contains("$ npx wrangler whoami"), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}
