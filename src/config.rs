//! Typed settings from vars and secrets. Read once per isolate: vars and
//! secrets cannot change without a new deployment, which starts new isolates.

use crate::domain::image::ImagePolicy;
use crate::fal::client::FalSettings;
use crate::fal::models::{ModelRegistry, ResultUrls};
pub use crate::secret::Secret;
use sha2::{Digest, Sha256};
use worker::Env;

#[derive(Debug, Clone)]
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
    /// How long a job record lives in KV.
    pub job_ttl_s: u64,
    /// After this long without a webhook, reading a job asks FAL directly.
    pub job_poll_after_ms: u64,
    /// Our own public origin, for the webhook URL given to FAL; when unset,
    /// the origin of the request that created the job.
    pub public_base_url: Option<String>,
    /// Key from which each client's callback signing secret is derived.
    pub webhook_signing_key: Option<Secret>,
    /// Where generation events are forwarded, if anywhere.
    pub metrics_endpoint: Option<String>,
    pub metrics_token: Option<Secret>,
    /// Generation rows older than this are deleted by the scheduled handler.
    pub retention_days: u64,
}

pub const DEFAULT_FAL_TIMEOUT_MS: u64 = 120_000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
pub const DEFAULT_MAX_DATA_URI_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_SESSION_IDLE_MS: u64 = 2 * 3600 * 1000;
pub const DEFAULT_JOB_TTL_S: u64 = 3600;
pub const DEFAULT_JOB_POLL_AFTER_MS: u64 = 20_000;
/// 13 months: a year of invoices plus the month in progress.
pub const DEFAULT_RETENTION_DAYS: u64 = 396;
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
            job_ttl_s: number("JOB_TTL_SECONDS", DEFAULT_JOB_TTL_S)?.max(crate::domain::job::KV_MIN_TTL_S),
            job_poll_after_ms: number("JOB_POLL_AFTER_MS", DEFAULT_JOB_POLL_AFTER_MS)?,
            public_base_url: var("PUBLIC_BASE_URL").map(trim_url),
            webhook_signing_key: secret("WEBHOOK_SIGNING_KEY").map(Secret::new),
            metrics_endpoint: var("METRICS_ENDPOINT"),
            metrics_token: secret("METRICS_TOKEN").map(Secret::new),
            retention_days: number("RETENTION_DAYS", DEFAULT_RETENTION_DAYS)?.max(1),
        })
    }
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
