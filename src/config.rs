//! Typed settings from vars and secrets. Read once per isolate: vars and
//! secrets cannot change without a new deployment, which starts new isolates.

use crate::domain::image::ImagePolicy;
use crate::domain::result_url;
use crate::fal::client::FalSettings;
use crate::fal::models::{ModelRegistry, ResultUrls};
pub use crate::secret::Secret;
use crate::domain::signing::SigningKeys;
use sha2::{Digest, Sha256};
use std::rc::Rc;
use worker::Env;

#[derive(Debug)]
pub struct Config {
    pub fal: FalSettings,
    /// SHA-256 of `ADMIN_PASSWORD`; the login compares digests in constant time.
    pub admin_password_digest: Option<[u8; 32]>,
    pub image_policy: ImagePolicy,
    pub max_body_bytes: usize,
    pub session_idle_timeout_ms: u64,
    /// `ENVIRONMENT = "development"`: local development and the tests. Only
    /// there are the test conveniences below honoured.
    pub development: bool,
    /// Lets tests move the clock with an `x-test-now` header. Honoured only
    /// in development: anyone could otherwise expire sessions, reservations
    /// and windows at will.
    pub test_clock: bool,
    /// Development only: local KV refuses a second write to a key within a
    /// second, as production KV does.
    pub emulate_kv_write_limit: bool,
    /// Bad API keys one source may present per minute before it gets 429s.
    pub bad_credentials_per_minute: u32,
    /// How long a job record lives in KV.
    pub job_ttl_s: u64,
    /// After this long without a webhook, reading a job asks FAL directly.
    pub job_poll_after_ms: u64,
    /// A status stream ends after this long even if its job has not.
    pub status_stream_max_ms: u64,
    /// Our own public origin, for the webhook URL given to FAL; when unset,
    /// the origin of the request that created the job.
    pub public_base_url: Option<String>,
    /// Key from which each client's callback signing secret is derived.
    pub webhook_signing_key: Option<Secret>,
    /// Where generation events are forwarded, if anywhere.
    pub metrics_endpoint: Option<String>,
    pub metrics_token: Option<Secret>,
    /// Generation rows older than this are deleted by the scheduled handler,
    /// and their images before them (a client may keep its images less long).
    pub retention_days: u64,
    /// `SIGNING_KEYS`: signs what we hand out (result URLs, …), one derived
    /// key per purpose. Without it, views link FAL's URLs instead of ours.
    pub signing_keys: Option<Rc<SigningKeys>>,
    /// How long a minted result URL works.
    pub result_url_ttl_s: u64,
    /// FAL outputs larger than this are refused (the generation is an error).
    pub max_result_bytes: u64,
    /// Seconds before each retry of an outbound event (callback, metrics):
    /// one entry per retry the EVENTS queue allows (`max_retries`).
    pub event_retry_delays_s: Vec<u32>,
    /// Delivery log rows older than this are deleted by the scheduled handler.
    pub delivery_log_days: u64,
    /// A client whose callbacks have failed without a success for this long is paused.
    pub callback_pause_after_ms: u64,
}

pub const DEFAULT_FAL_TIMEOUT_MS: u64 = 120_000;
/// Bad API keys one source may present per minute before it gets 429s.
pub const DEFAULT_BAD_CREDENTIALS_PER_MINUTE: u64 = 30;
/// A request with data-URI images is held about three times over in wasm
/// memory (the body, the parsed request, FAL's body), and an isolate has 128
/// MB for everything: at 6 MiB, four such requests at once take about 80 MiB
/// of wasm memory (`scripts/bench.sh memory`; README "Memory"). Larger photos
/// go as URLs.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// One data-URI image, decoded: a 12-megapixel phone JPEG fits.
pub const DEFAULT_MAX_DATA_URI_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_SESSION_IDLE_MS: u64 = 2 * 3600 * 1000;
pub const DEFAULT_JOB_TTL_S: u64 = 3600;
pub const DEFAULT_JOB_POLL_AFTER_MS: u64 = 20_000;
/// A status stream ends after five minutes even if its job has not (clients
/// reconnect with `Last-Event-ID`): it holds the client's object and a
/// connection open, and Cloudflare may restart a runtime under long streams.
pub const DEFAULT_STATUS_STREAM_MAX_S: u64 = 5 * 60;
/// 13 months: a year of invoices plus the month in progress.
pub const DEFAULT_RETENTION_DAYS: u64 = 396;
/// Larger than any output of the offered models at their offered sizes.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 25 * 1024 * 1024;
/// FAL keeps its copy of an output one day: long enough for the cron to
/// retry a failed copy about 24 times, after which ours is the only one.
pub const DEFAULT_FAL_OUTPUT_EXPIRATION_S: u64 = 24 * 3600;
/// The EVENTS queue's `max_retries` in wrangler.toml: the schedule has one
/// delay per retry, so the queue dead-letters a message exactly when the
/// schedule runs out (a host test reads wrangler.toml to keep them equal).
pub const EVENT_MAX_RETRIES: usize = 8;
/// 10 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h: nine attempts over about
/// 10 h 40 min, so a deploy, a restart or an evening outage loses nothing.
pub const DEFAULT_EVENT_RETRY_DELAYS_S: [u32; EVENT_MAX_RETRIES] = [10, 30, 120, 600, 1_800, 3_600, 10_800, 21_600];
/// Cloudflare Queues refuses a longer `delaySeconds` (12 hours).
pub const MAX_QUEUE_DELAY_S: u32 = 12 * 3600;
pub const DEFAULT_DELIVERY_LOG_DAYS: u64 = 30;
pub const DEFAULT_CALLBACK_PAUSE_AFTER_S: u64 = 24 * 3600;
pub const DEFAULT_FAL_JWKS_URL: &str = "https://rest.alpha.fal.ai/.well-known/jwks.json";

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, String> {
        let var = |name: &str| env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let gate = DevelopmentGate::new(var("ENVIRONMENT").as_deref());
        let allow_loopback = gate.honour("ALLOW_LOOPBACK_IMAGE_URLS", var("ALLOW_LOOPBACK_IMAGE_URLS").as_deref() == Some("true"));
        let test_clock = gate.honour("TEST_CLOCK", var("TEST_CLOCK").as_deref() == Some("enabled"));
        gate.warn_ignored();
        let secret = |name: &str| env.secret(name).ok().map(|v| v.to_string()).filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| -> Result<u64, String> {
            var(name).map_or(Ok(default), |v| v.trim().parse().map_err(|_| format!("{name} must be a whole number")))
        };
        Ok(Self {
            fal: FalSettings {
                base_url: trim_url(var("FAL_BASE_URL").unwrap_or_else(|| "https://fal.run".into())),
                queue_url: trim_url(var("FAL_QUEUE_URL").unwrap_or_else(|| "https://queue.fal.run".into())),
                key: secret("FAL_KEY").map(Secret::new),
                timeout_ms: number("FAL_TIMEOUT_MS", DEFAULT_FAL_TIMEOUT_MS)?,
                jwks_url: var("FAL_JWKS_URL").unwrap_or_else(|| DEFAULT_FAL_JWKS_URL.into()),
                models: ModelRegistry::with_overrides(var("FAL_MODEL_ENDPOINTS").as_deref())?,
                output_expiration_s: number("FAL_OUTPUT_EXPIRATION_SECONDS", DEFAULT_FAL_OUTPUT_EXPIRATION_S)?.max(600),
                result_urls: ResultUrls { allow_loopback_http: allow_loopback },
            },
            admin_password_digest: secret("ADMIN_PASSWORD").map(|p| Sha256::digest(p.as_bytes()).into()),
            image_policy: ImagePolicy {
                allow_loopback_http: allow_loopback,
                max_data_uri_bytes: number("MAX_DATA_URI_BYTES", DEFAULT_MAX_DATA_URI_BYTES as u64)? as usize,
            },
            max_body_bytes: number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            session_idle_timeout_ms: number("ADMIN_SESSION_IDLE_MINUTES", DEFAULT_SESSION_IDLE_MS / 60_000)? * 60_000,
            development: gate.development,
            test_clock,
            bad_credentials_per_minute: number(
                "BAD_CREDENTIALS_PER_MINUTE",
                DEFAULT_BAD_CREDENTIALS_PER_MINUTE,
            )?
            .clamp(1, u32::MAX.into()) as u32,
            emulate_kv_write_limit: var("EMULATE_KV_WRITE_LIMIT").as_deref() == Some("true")
                && gate.development,
            job_ttl_s: number("JOB_TTL_SECONDS", DEFAULT_JOB_TTL_S)?.max(crate::domain::job::KV_MIN_TTL_S),
            job_poll_after_ms: number("JOB_POLL_AFTER_MS", DEFAULT_JOB_POLL_AFTER_MS)?,
            // Shorter only: five minutes is the bound the README gives.
            status_stream_max_ms: number("STATUS_STREAM_MAX_SECONDS", DEFAULT_STATUS_STREAM_MAX_S)?.clamp(1, DEFAULT_STATUS_STREAM_MAX_S) * 1000,
            public_base_url: var("PUBLIC_BASE_URL").map(trim_url),
            webhook_signing_key: secret("WEBHOOK_SIGNING_KEY").map(Secret::new),
            metrics_endpoint: var("METRICS_ENDPOINT"),
            metrics_token: secret("METRICS_TOKEN").map(Secret::new),
            retention_days: number("RETENTION_DAYS", DEFAULT_RETENTION_DAYS)?.max(1),
            signing_keys: secret("SIGNING_KEYS").map(|raw| SigningKeys::parse(&raw)).transpose()?.map(Rc::new),
            // At most 7 days: a retired signing key is kept that long (docs/operations.md §8).
            result_url_ttl_s: number("RESULT_URL_TTL_SECONDS", result_url::DEFAULT_TTL_S)?.clamp(60, result_url::DEFAULT_TTL_S),
            // A streamed copy declares its length as 32 bits.
            max_result_bytes: number("MAX_RESULT_BYTES", DEFAULT_MAX_RESULT_BYTES)?.clamp(1, u64::from(u32::MAX)),
            event_retry_delays_s: match var("EVENT_RETRY_DELAYS") {
                Some(raw) => parse_retry_delays(&raw)?,
                None => DEFAULT_EVENT_RETRY_DELAYS_S.to_vec(),
            },
            delivery_log_days: number("DELIVERY_LOG_DAYS", DEFAULT_DELIVERY_LOG_DAYS)?.max(1),
            callback_pause_after_ms: number("CALLBACK_PAUSE_AFTER_SECONDS", DEFAULT_CALLBACK_PAUSE_AFTER_S)?.max(1) * 1000,
        })
    }
}

/// `EVENT_RETRY_DELAYS`: comma-separated seconds, exactly one per retry the
/// queue allows, each between 1 s and the queue's 12-hour maximum. Tests use
/// it to shorten the backoff; the queue still does every retry.
pub fn parse_retry_delays(raw: &str) -> Result<Vec<u32>, String> {
    let bad = || {
        format!("EVENT_RETRY_DELAYS must list {EVENT_MAX_RETRIES} whole numbers of seconds (1 to {MAX_QUEUE_DELAY_S}), comma-separated")
    };
    let delays: Vec<u32> = raw
        .split(',')
        .map(|d| d.trim().parse::<u32>().ok().filter(|d| (1..=MAX_QUEUE_DELAY_S).contains(d)))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if delays.len() != EVENT_MAX_RETRIES {
        return Err(bad());
    }
    Ok(delays)
}

/// Test conveniences (`TEST_CLOCK`, `ALLOW_LOOPBACK_IMAGE_URLS`) are honoured
/// only when `ENVIRONMENT` says development. A deployed environment — or one
/// that forgot to say what it is — ignores them, and says so in its log once
/// (settings are read once per isolate).
struct DevelopmentGate {
    development: bool,
    ignored: std::cell::RefCell<Vec<&'static str>>,
}

impl DevelopmentGate {
    fn new(environment: Option<&str>) -> Self {
        Self { development: is_development(environment), ignored: Default::default() }
    }

    fn honour(&self, name: &'static str, requested: bool) -> bool {
        if requested && !self.development {
            self.ignored.borrow_mut().push(name);
        }
        requested && self.development
    }

    fn warn_ignored(&self) {
        for name in self.ignored.borrow().iter() {
            worker::console_warn!("{name} is set but ignored: ENVIRONMENT is not \"development\"");
        }
    }
}

/// Only the exact word turns the conveniences on; absent means deployed.
pub fn is_development(environment: Option<&str>) -> bool {
    environment.map(str::trim) == Some("development")
}

fn trim_url(url: String) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_need_one_delay_per_queue_retry_within_the_queue_maximum() {
        assert_eq!(parse_retry_delays("1, 2,4,1,1,1,1,1"), Ok(vec![1, 2, 4, 1, 1, 1, 1, 1]));
        assert!(parse_retry_delays("1,2,3").is_err(), "fewer delays than retries");
        assert!(parse_retry_delays("0,1,1,1,1,1,1,1").is_err(), "zero");
        assert!(parse_retry_delays("43201,1,1,1,1,1,1,1").is_err(), "over 12 hours");
        assert!(parse_retry_delays("1,1,1,x,1,1,1,1").is_err());
    }

    /// The default the README's Configuration table gives for `name`.
    fn readme_default(name: &str) -> String {
        let readme = include_str!("../README.md");
        let row = readme.lines().find(|l| l.starts_with(&format!("| `{name}` |"))).unwrap_or_else(|| panic!("no README row for {name}"));
        row.split('|').nth(3).unwrap_or_default().trim().trim_matches('`').to_string()
    }

    #[test]
    fn the_default_schedule_is_10_s_30_s_2_min_10_min_30_min_1_h_3_h_6_h() {
        assert_eq!(DEFAULT_EVENT_RETRY_DELAYS_S, [10, 30, 120, 600, 1_800, 3_600, 10_800, 21_600]);
        // Nine attempts over 10 h 42 min 40 s ("about 10 h 40 min", README and docs/operations.md §11).
        assert_eq!(DEFAULT_EVENT_RETRY_DELAYS_S.iter().sum::<u32>(), 10 * 3600 + 42 * 60 + 40);
        // The documented default, read as the setting would be.
        assert_eq!(parse_retry_delays(&readme_default("EVENT_RETRY_DELAYS")), Ok(DEFAULT_EVENT_RETRY_DELAYS_S.to_vec()));
    }

    #[test]
    fn a_source_may_present_30_bad_credentials_a_minute_by_default() {
        assert_eq!(DEFAULT_BAD_CREDENTIALS_PER_MINUTE, 30);
        assert_eq!(readme_default("BAD_CREDENTIALS_PER_MINUTE"), DEFAULT_BAD_CREDENTIALS_PER_MINUTE.to_string());
    }

    /// The consumer relies on the queue dead-lettering a message right after
    /// the schedule's last attempt; wrangler.toml must allow exactly that many retries.
    #[test]
    fn every_events_consumer_in_wrangler_toml_allows_exactly_the_schedules_retries() {
        let toml = include_str!("../wrangler.toml");
        let mut consumers = 0;
        for block in toml.split("queues.consumers]]").skip(1) {
            let queue = block.lines().find_map(|l| l.trim().strip_prefix("queue = ")).unwrap_or_default();
            if queue.contains("dlq") {
                continue;
            }
            consumers += 1;
            let retries = block.lines().find_map(|l| l.trim().strip_prefix("max_retries = ")).unwrap_or_default();
            assert_eq!(retries.trim(), EVENT_MAX_RETRIES.to_string(), "max_retries of {queue}");
            assert!(block.contains("dead_letter_queue = "), "{queue} has a dead-letter queue");
        }
        assert_eq!(consumers, 3, "the local, staging and production events queues");
    }

    #[test]
    fn only_an_explicit_development_environment_counts_as_local() {
        assert!(is_development(Some("development")));
        for deployed in [None, Some("production"), Some("staging"), Some(""), Some("Development"), Some("dev")] {
            assert!(!is_development(deployed), "{deployed:?}");
        }
    }

    #[test]
    fn conveniences_are_ignored_outside_development() {
        let deployed = DevelopmentGate::new(Some("production"));
        assert!(!deployed.honour("TEST_CLOCK", true));
        assert_eq!(*deployed.ignored.borrow(), vec!["TEST_CLOCK"]);
        let local = DevelopmentGate::new(Some("development"));
        assert!(local.honour("TEST_CLOCK", true));
        assert!(!local.honour("ALLOW_LOOPBACK_IMAGE_URLS", false));
        assert!(local.ignored.borrow().is_empty());
    }
}
