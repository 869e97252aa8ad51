//! Typed settings from vars and secrets. Read once per isolate: vars and
//! secrets cannot change without a new deployment, which starts new isolates.

use crate::domain::image::ImagePolicy;
use crate::domain::result_url;
use crate::fal::client::FalSettings;
use crate::fal::models::ModelRegistry;
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
    /// Lets tests move the clock with an `x-test-now` header. Never set in production.
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
}

pub const DEFAULT_FAL_TIMEOUT_MS: u64 = 120_000;
/// Bad API keys one source may present per minute before it gets 429s.
pub const DEFAULT_BAD_CREDENTIALS_PER_MINUTE: u64 = 30;
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
pub const DEFAULT_MAX_DATA_URI_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_SESSION_IDLE_MS: u64 = 2 * 3600 * 1000;
pub const DEFAULT_JOB_TTL_S: u64 = 3600;
pub const DEFAULT_JOB_POLL_AFTER_MS: u64 = 20_000;
/// 13 months: a year of invoices plus the month in progress.
pub const DEFAULT_RETENTION_DAYS: u64 = 396;
/// Larger than any output of the offered models at their offered sizes.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 25 * 1024 * 1024;
/// FAL keeps its copy of an output one day: long enough for the cron to
/// retry a failed copy about 24 times, after which ours is the only one.
pub const DEFAULT_FAL_OUTPUT_EXPIRATION_S: u64 = 24 * 3600;
pub const DEFAULT_FAL_JWKS_URL: &str = "https://rest.alpha.fal.ai/.well-known/jwks.json";

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, String> {
        let var = |name: &str| env.var(name).ok().map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
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
            },
            admin_password_digest: secret("ADMIN_PASSWORD").map(|p| Sha256::digest(p.as_bytes()).into()),
            image_policy: ImagePolicy {
                allow_loopback_http: var("ALLOW_LOOPBACK_IMAGE_URLS").as_deref() == Some("true"),
                max_data_uri_bytes: number("MAX_DATA_URI_BYTES", DEFAULT_MAX_DATA_URI_BYTES as u64)? as usize,
            },
            max_body_bytes: number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64)? as usize,
            session_idle_timeout_ms: number("ADMIN_SESSION_IDLE_MINUTES", DEFAULT_SESSION_IDLE_MS / 60_000)? * 60_000,
            test_clock: var("TEST_CLOCK").as_deref() == Some("enabled"),
            bad_credentials_per_minute: number(
                "BAD_CREDENTIALS_PER_MINUTE",
                DEFAULT_BAD_CREDENTIALS_PER_MINUTE,
            )?
            .clamp(1, u32::MAX.into()) as u32,
            emulate_kv_write_limit: var("EMULATE_KV_WRITE_LIMIT").as_deref() == Some("true")
                && var("ENVIRONMENT").as_deref() == Some("development"),
            job_ttl_s: number("JOB_TTL_SECONDS", DEFAULT_JOB_TTL_S)?.max(crate::domain::job::KV_MIN_TTL_S),
            job_poll_after_ms: number("JOB_POLL_AFTER_MS", DEFAULT_JOB_POLL_AFTER_MS)?,
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
        })
    }
}

fn trim_url(url: String) -> String {
    url.trim().trim_end_matches('/').to_string()
}
