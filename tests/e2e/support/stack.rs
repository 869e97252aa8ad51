//! Starts the real local runtime for the tests: `wrangler dev` (workerd with
//! local D1, KV, R2 and Durable Objects) on a free loopback port with a fresh state
//! folder, and the FAL emulator in this process.
//!
//! One shared stack serves most tests (each test makes its own clients, so
//! they cannot see each other's data); tests that need their own settings or
//! a restart start a dedicated one. Every wrangler runs in its own process
//! group, killed when its `Stack` drops or, for the shared one, by a watchdog
//! when the test process exits.

use fal_emulator::{Emulator, EmulatorConfig};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "e2e-admin-password";
pub const FAL_KEY: &str = "e2e-fal-key";
/// Low, so the "FAL hangs" test ends quickly.
pub const FAL_TIMEOUT_MS: u64 = 3000;
/// Reads of unfinished jobs ask FAL directly after this long without a webhook.
pub const JOB_POLL_AFTER_MS: u64 = 1500;
/// KV's minimum, so a test can watch a job expire.
pub const JOB_TTL_SECONDS: u64 = 60;
pub const WEBHOOK_SIGNING_KEY: &str = "e2e-callback-signing-key";
/// Signs widget session tokens and result URLs.
pub const SIGNING_KEYS: &str = "e2e:e2e-signing-secret-of-at-least-32-characters";
/// The events' retry delays, shortened through the setting (the queue still
/// does every retry): 1 s, 2 s, 4 s, then 1 s — nine attempts in about 20 s.
pub const EVENT_RETRY_DELAYS: [u64; 8] = [1, 2, 4, 1, 1, 1, 1, 1];

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
    })
}

/// Blocks on `work` on the stack's runtime (from any thread).
pub fn block_on<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> T {
    off_runtime(move || runtime().block_on(work))
}

/// Runs `work` in the background on the stack's runtime, which outlives every test.
pub fn spawn(work: impl std::future::Future<Output = ()> + Send + 'static) {
    runtime().spawn(work);
}

/// Runs `f` on a plain thread, so it may block on our runtime even when called
/// from inside a test's own runtime.
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("stack setup thread panicked")
}

pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        off_runtime(|| {
            let config = EmulatorConfig { api_key: FAL_KEY.into(), latency_ms: 0, compose: true };
            runtime().block_on(Emulator::start(config, 0)).expect("the emulator starts")
        })
    })
}

pub struct Stack {
    pub base: String,
    pub state_dir: PathBuf,
    pgid: u32,
}

impl Drop for Stack {
    fn drop(&mut self) {
        kill_group(self.pgid);
    }
}

#[derive(Default, Clone)]
pub struct StackOptions {
    /// Extra `--var NAME:VALUE` settings.
    pub vars: Vec<(String, String)>,
    /// Reuse a state folder (to test that state survives a restart).
    pub state_dir: Option<PathBuf>,
}

pub fn shared() -> &'static Stack {
    static SHARED: OnceLock<Stack> = OnceLock::new();
    SHARED.get_or_init(|| start(StackOptions::default()))
}

/// Starts a dedicated stack; it stops when dropped.
pub fn start(options: StackOptions) -> Stack {
    let emulator_url = emulator().url();
    let metrics_url = super::metrics_sink::sink().url();
    off_runtime(move || start_blocking(options, emulator_url, metrics_url))
}

fn start_blocking(options: StackOptions, emulator_url: String, metrics_url: String) -> Stack {
    build_once();
    let state_dir = options.state_dir.clone().unwrap_or_else(fresh_state_dir);
    std::fs::create_dir_all(&state_dir).expect("state dir");
    let logs = root().join("target/e2e-logs");
    std::fs::create_dir_all(&logs).expect("log dir");

    let migrate = wrangler()
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(&state_dir)
        .stdin(Stdio::null())
        .output()
        .expect("wrangler runs");
    assert!(migrate.status.success(), "migrations failed: {}", String::from_utf8_lossy(&migrate.stderr));

    let port = free_port();
    let mut vars: Vec<(String, String)> = vec![
        ("FAL_BASE_URL".into(), emulator_url.clone()),
        ("FAL_QUEUE_URL".into(), format!("{emulator_url}/queue")),
        ("FAL_JWKS_URL".into(), format!("{emulator_url}/.well-known/jwks.json")),
        ("JOB_POLL_AFTER_MS".into(), JOB_POLL_AFTER_MS.to_string()),
        ("JOB_TTL_SECONDS".into(), JOB_TTL_SECONDS.to_string()),
        ("WEBHOOK_SIGNING_KEY".into(), WEBHOOK_SIGNING_KEY.into()),
        ("SIGNING_KEYS".into(), SIGNING_KEYS.into()),
        ("METRICS_ENDPOINT".into(), metrics_url),
        ("FAL_KEY".into(), FAL_KEY.into()),
        ("ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ("FAL_TIMEOUT_MS".into(), FAL_TIMEOUT_MS.to_string()),
        ("ALLOW_LOOPBACK_IMAGE_URLS".into(), "true".into()),
        ("TEST_CLOCK".into(), "enabled".into()),
        // Every test request comes from 127.0.0.1: the per-source throttle on
        // bad keys is tested on its own stack, with its default.
        ("BAD_CREDENTIALS_PER_MINUTE".into(), "100000".into()),
        ("EVENT_RETRY_DELAYS".into(), EVENT_RETRY_DELAYS.map(|d| d.to_string()).join(",")),
    ];
    vars.retain(|(name, _)| !options.vars.iter().any(|(own, _)| own == name));
    vars.extend(options.vars);
    let log = std::fs::File::create(logs.join(format!("wrangler-{port}.log"))).expect("log file");
    let mut cmd = wrangler();
    cmd.args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .args(["--show-interactive-dev-session=false", "--live-reload=false", "--persist-to"])
        .arg(&state_dir);
    for (name, value) in &vars {
        cmd.arg("--var").arg(format!("{name}:{value}"));
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .env("SKIP_WORKER_BUILD", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("wrangler dev starts");
    let stack = Stack { base: format!("http://127.0.0.1:{port}"), state_dir, pgid: child.id() };
    watch_parent(stack.pgid);
    wait_until_ready(&stack.base, port);
    stack
}

fn wrangler() -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(root().join("node_modules/wrangler/bin/wrangler.js"))
        .current_dir(root())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", root().join("target/wrangler-logs"));
    cmd
}

/// Builds the worker once per test run, unless the caller already did.
fn build_once() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap();
    if *built {
        return;
    }
    if std::env::var("SKIP_WORKER_BUILD").as_deref() != Ok("1") || !root().join("build/index.js").exists() {
        let status = Command::new("bash")
            .arg(root().join("scripts/build.sh"))
            .env_remove("SKIP_WORKER_BUILD")
            .status()
            .expect("build runs");
        assert!(status.success(), "worker build failed");
    }
    *built = true;
}

fn fresh_state_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root().join(format!("target/e2e-state/{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn wait_until_ready(base: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let url = format!("{base}/health");
    let ready = runtime().block_on(async {
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    });
    assert!(ready, "wrangler dev did not become ready; see target/e2e-logs/wrangler-{port}.log");
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pgid}")]).status();
}

/// The shared stack lives as long as the test process, and a panicking test
/// may never drop its own: this watchdog stops a stack when the test process
/// exits, however it exits.
fn watch_parent(pgid: u32) {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill -TERM -{pgid} 2>/dev/null; sleep 3; kill -KILL -{pgid} 2>/dev/null",
        parent = std::process::id()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().expect("watchdog starts");
}
