//! Starts the real local runtime for the tests: `wrangler dev` (workerd with
//! local D1, KV, R2 and Durable Objects) on a free loopback port with a fresh state
//! folder, and the FAL emulator in this process.
//!
//! A few long-lived stacks serve the tests, each named for the configuration
//! it has (each test makes its own clients, so tests sharing a stack cannot
//! see each other's data):
//!
//! - [`shared`]: everything configured, with the test clock;
//! - [`production_like`]: the settings production has or lacks — no test
//!   clock, no loopback image URLs, no `WEBHOOK_SIGNING_KEY` — plus every
//!   optional setting moved off its default (see `production_like`);
//! - [`maintenance`]: with the test clock, for the scheduled handler (which
//!   acts on every client's rows and sessions, so it must not run where other
//!   tests' sessions live), and with a metrics receiver that is down;
//! - [`login_throttle`]: for the test that locks out its admin.
//!
//! The restart scenario (`restart_scenario`) starts and stops its own. Every wrangler runs in
//! its own process group, killed when its `Stack` drops or, for the long-lived
//! ones, by a watchdog when the test process exits.

use super::jwks::JwksServer;
use super::receiver::Receiver;
use fal_emulator::{Emulator, EmulatorConfig};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "e2e-admin-password";
pub const FAL_KEY: &str = "e2e-fal-key";
/// Low, so the "FAL hangs" test ends quickly.
pub const FAL_TIMEOUT_MS: u64 = 3000;
/// Reads of unfinished jobs ask FAL directly after this long without a webhook.
pub const JOB_POLL_AFTER_MS: u64 = 1500;
/// The production-like stack asks for 10 s job records, below KV's minimum,
/// which the worker raises to 60 s: a test watches one expire. (The other
/// stacks keep the default hour, so a job's reservation is held for its
/// documented 15 minutes.)
pub const SHORT_JOB_TTL_SECONDS: u64 = 10;
pub const KV_MIN_TTL_SECONDS: u64 = 60;
/// The production-like stack's caps on request bodies and data-URI images.
pub const SMALL_MAX_BODY_BYTES: usize = 300_000;
pub const SMALL_MAX_DATA_URI_BYTES: usize = 100_000;
/// The production-like stack's result URL lifetime and how long FAL is asked
/// to keep its files (defaults: 7 days and a day).
pub const SHORT_RESULT_URL_TTL_SECONDS: u64 = 7200;
pub const SHORT_FAL_OUTPUT_EXPIRATION_SECONDS: u64 = 7200;
/// The production-like stack's override of one model's FAL endpoint.
pub const NANO_BANANA_OVERRIDE: &str = "fal-ai/nano-banana-pro/v2/edit";
pub const WEBHOOK_SIGNING_KEY: &str = "e2e-callback-signing-key";
/// Signs widget session tokens and result URLs.
pub const SIGNING_KEYS: &str = "e2e:e2e-signing-secret-of-at-least-32-characters";
/// The events' retry delays, shortened through the setting (the queue still
/// does every retry): 1 s, 2 s, 4 s, then 1 s — nine attempts in about 20 s.
pub const EVENT_RETRY_DELAYS: [u64; 8] = [1, 2, 4, 1, 1, 1, 1, 1];
pub const METRICS_TOKEN: &str = "e2e-metrics-token";
/// The maintenance stack's idle timeout, so a test can tell the setting from the default (120).
pub const MAINTENANCE_IDLE_MINUTES: u64 = 45;

/// At most this many wrangler processes start at once. A start is a burst of
/// CPU (node, workerd, compiling the wasm); on a two-core machine more of
/// them at once only slow every start down and thin every timing margin of
/// the tests already running.
const MAX_CONCURRENT_STARTS: usize = 2;

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
    match std::thread::spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        trace("-", "test process started");
        off_runtime(|| {
            let config = EmulatorConfig { api_key: FAL_KEY.into(), latency_ms: 0, compose: true, data_uri_results: false };
            runtime().block_on(Emulator::start(config, 0)).expect("the emulator starts")
        })
    })
}

pub struct Stack {
    pub base: String,
    pub state_dir: PathBuf,
    pgid: u32,
    /// The wrangler process (the group's leader), to reap it when stopping.
    child: Mutex<std::process::Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        kill_group(self.pgid);
    }
}

impl Stack {
    /// Stops the runtime and waits until every process of it has exited, so
    /// its state folder can be read or changed. Returns the folder.
    pub fn stop(self) -> PathBuf {
        let (pgid, dir) = (self.pgid, self.state_dir.clone());
        kill_group(pgid);
        let deadline = Instant::now() + Duration::from_secs(15);
        let _ = self.child.lock().unwrap().wait();
        while group_alive(pgid) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        dir
    }
}

#[derive(Default, Clone)]
pub struct StackOptions {
    /// Extra `--var NAME:VALUE` settings (replacing a default of the same name).
    pub vars: Vec<(String, String)>,
    /// Default settings to leave out, to run the worker without them.
    pub unset: Vec<&'static str>,
    /// Reuse a state folder (to test that state survives a restart).
    pub state_dir: Option<PathBuf>,
}

impl StackOptions {
    pub fn var(mut self, name: &str, value: impl ToString) -> Self {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    pub fn unset(mut self, name: &'static str) -> Self {
        self.unset.push(name);
        self
    }
}

pub fn shared() -> &'static Stack {
    static SHARED: OnceLock<Stack> = OnceLock::new();
    SHARED.get_or_init(|| {
        prewarm();
        start(StackOptions::default())
    })
}

/// A stack configured as production is, with the optional settings moved.
pub struct ProductionLike {
    pub stack: Stack,
    /// Its own FAL, answering with images inline (data URIs): this stack, as
    /// a deployed one, refuses the shared emulator's loopback file URLs.
    pub emulator: Emulator,
    /// Serves FAL's JWKS (`FAL_JWKS_URL`) and counts the worker's fetches.
    pub jwks: JwksServer,
    /// Our "public origin" (`PUBLIC_BASE_URL`): FAL's webhooks land here, so
    /// on this stack jobs finish by polling.
    pub public_origin: Receiver,
    /// A job created (and finished) as the stack started, so that the minute
    /// its record takes to expire passes while the other tests run.
    pub aging_job: AgingJob,
    /// A job created as the stack started and never read: no webhook reaches
    /// this stack and nobody polls, so the worker never learns how it ended,
    /// and its lifetime (60 s) passes while the other tests run.
    pub stalled_job: AgingJob,
}

pub struct AgingJob {
    pub client: super::TestClient,
    pub id: String,
    /// When it was created.
    pub created: Instant,
}

pub fn production_like() -> &'static ProductionLike {
    static STACK: OnceLock<ProductionLike> = OnceLock::new();
    STACK.get_or_init(|| {
        let jwks = JwksServer::start();
        let public_origin = block_on(Receiver::start(0));
        let emulator = off_runtime(|| {
            let config = EmulatorConfig { api_key: FAL_KEY.into(), latency_ms: 0, compose: true, data_uri_results: true };
            runtime().block_on(Emulator::start(config, 0)).expect("the emulator starts")
        });
        let options = StackOptions::default()
            .var("FAL_BASE_URL", emulator.url())
            .var("FAL_QUEUE_URL", format!("{}/queue", emulator.url()))
            .unset("TEST_CLOCK")
            .unset("WEBHOOK_SIGNING_KEY")
            .unset("ALLOW_LOOPBACK_IMAGE_URLS")
            .var("METRICS_TOKEN", METRICS_TOKEN)
            .var("FAL_JWKS_URL", jwks.url())
            .var("PUBLIC_BASE_URL", public_origin.origin())
            .var("JOB_TTL_SECONDS", SHORT_JOB_TTL_SECONDS)
            .var("MAX_BODY_BYTES", SMALL_MAX_BODY_BYTES)
            .var("MAX_DATA_URI_BYTES", SMALL_MAX_DATA_URI_BYTES)
            .var("RESULT_URL_TTL_SECONDS", SHORT_RESULT_URL_TTL_SECONDS)
            .var("FAL_OUTPUT_EXPIRATION_SECONDS", SHORT_FAL_OUTPUT_EXPIRATION_SECONDS)
            .var("FAL_MODEL_ENDPOINTS", format!(r#"{{"nano-banana-pro":"{NANO_BANANA_OVERRIDE}"}}"#));
        let stack = start(options);
        // One verified delivery fills the worker's JWKS cache now, so that the
        // refetch test usually finds it older than a minute when its turn comes.
        let base = stack.base.clone();
        block_on(async move { super::fal_webhooks::deliver_for_unknown_job(&base, &super::fal_webhooks::emulator_key()).await });
        trace("production-like", "JWKS cache primed");
        let base = stack.base.clone();
        let aging_job = block_on(async move { create_aging_job(&base).await });
        trace("production-like", "aging job finished");
        let base = stack.base.clone();
        let stalled_job = block_on(async move { create_stalled_job(&base).await });
        ProductionLike { stack, emulator, jwks, public_origin, aging_job, stalled_job }
    })
}

async fn create_aging_job(base: &str) -> AgingJob {
    let client = super::Api::at(base).login().await.new_client().await;
    let body = super::data_uri_try_on().await;
    let created = Instant::now();
    let job = client.post("/api/jobs").json(&body).expect(202).await;
    let id = job["id"].as_str().unwrap().to_string();
    // No webhook reaches this stack: reads past JOB_POLL_AFTER_MS finish it.
    let path = format!("/api/jobs/{id}");
    super::wait_until("the aging job to finish", Duration::from_secs(20), || async {
        let job = client.get(&path).expect(200).await;
        if job["status"] == "done" { Ok(()) } else { Err(job.to_string()) }
    })
    .await;
    AgingJob { client, id, created }
}

async fn create_stalled_job(base: &str) -> AgingJob {
    let client = super::Api::at(base).login().await.new_client().await;
    let body = super::data_uri_try_on().await;
    let created = Instant::now();
    let job = client.post("/api/jobs").json(&body).expect(202).await;
    AgingJob { id: job["id"].as_str().unwrap().to_string(), client, created }
}

pub fn maintenance() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let dead = format!("http://127.0.0.1:{}/events", free_port());
        start(
            StackOptions::default()
                .var("METRICS_ENDPOINT", dead)
                .var("ADMIN_SESSION_IDLE_MINUTES", MAINTENANCE_IDLE_MINUTES),
        )
    })
}

/// A stack for the login-throttling test alone: it locks out its admin.
pub fn login_throttle() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| start(StackOptions::default()))
}

/// When the whole suite runs, the other stacks and the restart scenario are
/// set up in the background, so that few tests wait for them. The
/// production-like stack starts at once, beside the shared one: the real
/// minutes two tests need (a job record's expiry, the JWKS refetch interval)
/// start with it and pass while the other tests run; those two tests sort
/// last (`time_passing`). A filtered run starts only what its tests ask for.
fn prewarm() {
    if test_filter_given() {
        return;
    }
    std::thread::spawn(|| {
        production_like();
        maintenance();
    });
    std::thread::spawn(|| {
        shared();
        login_throttle();
        super::restart_scenario::scenario();
    });
}

/// Whether the test binary was given a name filter (a positional argument;
/// the values of libtest's options that take one are not filters).
fn test_filter_given() -> bool {
    const TAKES_VALUE: [&str; 7] = ["-Z", "--test-threads", "--skip", "--format", "--color", "--logfile", "--shuffle-seed"];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if TAKES_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return true;
        }
    }
    false
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
    let name = state_dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    trace(&name, "start requested");
    let _slot = StartSlot::take();
    trace(&name, "start slot taken");
    // A state folder that does not exist yet starts migrated, as a fresh one does.
    if options.state_dir.is_none() || !state_dir.exists() {
        copy_dir(migrated_template(), &state_dir);
    }
    let logs = root().join("target/e2e-logs");
    std::fs::create_dir_all(&logs).expect("log dir");

    let port = free_port();
    let mut vars: Vec<(String, String)> = vec![
        ("FAL_BASE_URL".into(), emulator_url.clone()),
        ("FAL_QUEUE_URL".into(), format!("{emulator_url}/queue")),
        ("FAL_JWKS_URL".into(), format!("{emulator_url}/.well-known/jwks.json")),
        ("JOB_POLL_AFTER_MS".into(), JOB_POLL_AFTER_MS.to_string()),
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
    vars.retain(|(name, _)| !options.vars.iter().any(|(own, _)| own == name) && !options.unset.contains(&name.as_str()));
    vars.extend(options.vars);
    let log = std::fs::File::create(logs.join(format!("wrangler-{port}.log"))).expect("log file");
    let mut cmd = wrangler();
    // Only the settings above: a developer's .dev.vars (scripts/dev.sh writes
    // one) must not fill in what a test leaves unset.
    let no_env_file = logs.join("empty.env");
    std::fs::write(&no_env_file, "").expect("empty env file");
    cmd.args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .arg("--env-file")
        .arg(&no_env_file)
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
    trace(&name, &format!("wrangler dev spawned on port {port}"));
    let stack = Stack { base: format!("http://127.0.0.1:{port}"), state_dir, pgid: child.id(), child: Mutex::new(child) };
    watch_parent(stack.pgid);
    wait_until_ready(&stack.base, port);
    trace(&name, "ready");
    stack
}

/// Appends when each stack reached each phase (seconds since the test process
/// started) to target/e2e-logs/stacks.log, to see where a slow run spent its time.
fn trace(stack: &str, phase: &str) {
    use std::io::Write;
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let since = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64();
    let path = root().join("target/e2e-logs/stacks.log");
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{:>7.2}s pid {} {stack}: {phase}", since, std::process::id());
    }
}

/// A state folder with the migrations applied, made once per test run and
/// copied for each new stack: applying them is a wrangler process of its own,
/// seconds of CPU that every start would otherwise repeat. (Called with a
/// start slot held.)
fn migrated_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = root().join(format!("target/e2e-state/{}-migrated", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("state dir");
        let migrate = wrangler()
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("wrangler runs");
        assert!(migrate.status.success(), "migrations failed: {}", String::from_utf8_lossy(&migrate.stderr));
        trace("-", "migrations applied to the template state");
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("state dir");
    for entry in std::fs::read_dir(from).expect("template state").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy template state");
        }
    }
}

/// Runs SQL against a stopped stack's local D1 (to set up what only a crash
/// or an older deployment could leave behind).
pub fn d1_execute(state_dir: &Path, sql: &str) {
    let _slot = StartSlot::take();
    let out = wrangler()
        .args(["d1", "execute", "DB", "--local", "--persist-to"])
        .arg(state_dir)
        .args(["--command", sql])
        .stdin(Stdio::null())
        .output()
        .expect("wrangler runs");
    assert!(out.status.success(), "d1 execute failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Admission to the start phase, at most `MAX_CONCURRENT_STARTS` at a time.
struct StartSlot;

static STARTING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

impl StartSlot {
    fn take() -> Self {
        let (count, freed) = &STARTING;
        let mut running = count.lock().unwrap();
        while *running >= MAX_CONCURRENT_STARTS {
            running = freed.wait(running).unwrap();
        }
        *running += 1;
        StartSlot
    }
}

impl Drop for StartSlot {
    fn drop(&mut self) {
        let (count, freed) = &STARTING;
        *count.lock().unwrap() -= 1;
        freed.notify_one();
    }
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
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = format!("{base}/health");
    let ready = runtime().block_on(async {
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    assert!(ready, "wrangler dev did not become ready; see target/e2e-logs/wrangler-{port}.log");
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill").args(["-TERM", "--", &format!("-{pgid}")]).stderr(Stdio::null()).status();
}

/// Whether any process of the group is still running (zombies, which only
/// wait for a parent to reap them, do not count).
fn group_alive(pgid: u32) -> bool {
    let Ok(out) = Command::new("ps").args(["-e", "-o", "pgid=,stat="]).output() else { return false };
    String::from_utf8_lossy(&out.stdout).lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some(pgid.to_string().as_str()) && fields.next().is_some_and(|stat| !stat.starts_with('Z'))
    })
}

/// The long-lived stacks live as long as the test process, and a panicking
/// test may never drop its own: this watchdog stops a stack when the test
/// process exits, however it exits.
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
