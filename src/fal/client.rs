//! Calls to FAL: sync inference, the queue (submit, status, result, cancel)
//! and the public JWKS. Each is bounded by a timeout (see `outbound`), so a
//! hanging FAL becomes a 504 for the shopper, never a request that never ends.

use super::models::{failure, fal_body, interpret_response, parse_queue_status, parse_submission, queue_position_of, FalFailure, FalOutput, ModelRegistry, QueueStatus, ResultUrls};
use crate::domain::generation::GenerationRequest;
use crate::domain::job::FalQueueRefs;
use crate::outbound::{self, Bounds, OutboundError};
use crate::secret::Secret;
use worker::{Date, Method};

/// Where FAL is and how we talk to it, from configuration.
#[derive(Debug, Clone)]
pub struct FalSettings {
    pub base_url: String,
    pub queue_url: String,
    pub key: Option<Secret>,
    /// Bound on one synchronous call.
    pub timeout_ms: u64,
    pub jwks_url: String,
    pub models: ModelRegistry,
    /// How long FAL should keep the files a request produces (sent as its
    /// object-lifecycle preference): ours is the durable copy, FAL's only
    /// needs to outlive our copying and its retries.
    pub output_expiration_s: u64,
    pub result_urls: ResultUrls,
}

/// The FAL client.
#[derive(Clone)]
pub struct Fal {
    settings: FalSettings,
}

pub struct FalCall {
    pub result: Result<FalOutput, FalFailure>,
    pub duration_ms: u64,
}

/// Calls to the queue API are quick bookkeeping, never inference.
const QUEUE_TIMEOUT_MS: u64 = 15_000;
/// FAL answers with JSON that points at the image (never the image itself):
/// a few kilobytes. A megabyte leaves room for long logs and descriptions.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

impl Fal {
    pub fn new(settings: FalSettings) -> Self {
        Self { settings }
    }

    pub fn settings(&self) -> &FalSettings {
        &self.settings
    }

    /// `POST {FAL_BASE_URL}/{endpoint}`: the synchronous API.
    pub async fn run_sync(&self, request: &GenerationRequest) -> FalCall {
        let started = Date::now().as_millis();
        let url = format!("{}/{}", self.settings.base_url, self.settings.models.endpoint(request.model));
        let result = self
            .send_producing(&url, fal_body(request), self.settings.timeout_ms)
            .await
            .and_then(|(status, body)| interpret_response(status, &body, self.settings.result_urls));
        FalCall { result, duration_ms: Date::now().as_millis().saturating_sub(started) }
    }

    /// `POST {FAL_QUEUE_URL}/{endpoint}?fal_webhook=…`: queues a request; FAL
    /// answers at once with its id, the URLs to follow it, and its place in
    /// the queue.
    pub async fn submit(&self, request: &GenerationRequest, webhook_url: &str) -> Result<(FalQueueRefs, Option<u64>), FalFailure> {
        let endpoint = self.settings.models.endpoint(request.model);
        let mut url = url::Url::parse(&format!("{}/{}", self.settings.queue_url, endpoint))
            .map_err(|e| FalFailure::Network { reason: format!("bad queue URL: {e}") })?;
        url.query_pairs_mut().append_pair("fal_webhook", webhook_url);
        let (status, body) = self.send_producing(url.as_str(), fal_body(request), QUEUE_TIMEOUT_MS).await?;
        match status {
            200..=299 => Ok((parse_submission(&body, &self.settings.queue_url)?, queue_position_of(&body))),
            _ => Err(failure(status, &body)),
        }
    }

    pub async fn queue_status(&self, refs: &FalQueueRefs) -> Result<QueueStatus, FalFailure> {
        let (status, body) = self.send(Method::Get, &refs.status_url, None, QUEUE_TIMEOUT_MS).await?;
        match status {
            200..=299 => parse_queue_status(&body),
            _ => Err(failure(status, &body)),
        }
    }

    /// The result of a COMPLETED request, which may itself be FAL's error.
    pub async fn queue_result(&self, refs: &FalQueueRefs) -> Result<FalOutput, FalFailure> {
        let (status, body) = self.send(Method::Get, &refs.response_url, None, QUEUE_TIMEOUT_MS).await?;
        interpret_response(status, &body, self.settings.result_urls)
    }

    /// FAL's status stream for a queued request (`{status_url}/stream`): the
    /// response once its headers arrive, its body still streaming.
    pub async fn status_stream(&self, refs: &FalQueueRefs) -> Result<worker::Response, FalFailure> {
        let key = self.settings.key.as_ref().ok_or(FalFailure::Unauthorized { status: 0 })?;
        let authorization = format!("Key {}", key.expose());
        let url = format!("{}/stream", refs.status_url);
        let headers = [("accept", "text/event-stream"), ("authorization", authorization.as_str())];
        let response = outbound::open(Method::Get, &url, &headers, QUEUE_TIMEOUT_MS).await.map_err(|e| match e {
            OutboundError::Timeout { after_ms } => FalFailure::Timeout { after_ms },
            OutboundError::Network(reason) => FalFailure::Network { reason },
            OutboundError::TooLarge { limit_bytes, .. } => too_large(limit_bytes),
            OutboundError::Redirected { status } => redirected(status),
        })?;
        match response.status_code() {
            200..=299 => Ok(response),
            status => Err(failure(status, "")),
        }
    }

    /// Asks FAL to cancel. `Ok(false)` when FAL says the request already completed.
    pub async fn cancel(&self, refs: &FalQueueRefs) -> Result<bool, FalFailure> {
        let (status, body) = self.send(Method::Put, &refs.cancel_url, None, QUEUE_TIMEOUT_MS).await?;
        match status {
            200..=299 => Ok(true),
            400 if body.contains("ALREADY_COMPLETED") => Ok(false),
            _ => Err(failure(status, &body)),
        }
    }

    async fn send(&self, method: Method, url: &str, body: Option<String>, timeout_ms: u64) -> Result<(u16, String), FalFailure> {
        let key = self.settings.key.as_ref().ok_or(FalFailure::Unauthorized { status: 0 })?;
        exchange(method, url, Some(key.expose()), body, &[], keyed(timeout_ms)).await
    }

    /// A POST that runs a model: it carries our lifecycle preference for the files it produces.
    async fn send_producing(&self, url: &str, body: String, timeout_ms: u64) -> Result<(u16, String), FalFailure> {
        let key = self.settings.key.as_ref().ok_or(FalFailure::Unauthorized { status: 0 })?;
        let lifecycle = lifecycle_preference(self.settings.output_expiration_s);
        exchange(Method::Post, url, Some(key.expose()), Some(body), &[(LIFECYCLE_HEADER, &lifecycle)], keyed(timeout_ms)).await
    }
}

/// Calls carrying our key: the key never follows a redirect (a `Location`
/// could send it anywhere), and the answer is FAL's JSON, never an image.
fn keyed(timeout_ms: u64) -> Bounds {
    Bounds { timeout_ms, max_body_bytes: MAX_ANSWER_BYTES, follow_redirects: false }
}

/// `GET` without credentials (FAL's public JWKS), at most `max_bytes` of answer.
pub async fn get_public(url: &str, timeout_ms: u64, max_bytes: usize) -> Result<(u16, String), FalFailure> {
    let bounds = Bounds { timeout_ms, max_body_bytes: max_bytes, follow_redirects: true };
    exchange(Method::Get, url, None, None, &[], bounds).await
}

fn too_large(limit_bytes: usize) -> FalFailure {
    FalFailure::Malformed { reason: format!("the answer is larger than {limit_bytes} bytes") }
}

fn redirected(status: u16) -> FalFailure {
    FalFailure::Failed { status, reason: "FAL answered with a redirect, which is not followed with our key".into() }
}

/// FAL's media-expiration header: how long to keep a request's output files
/// (https://docs.fal.ai/documentation/model-apis/media-expiration).
pub const LIFECYCLE_HEADER: &str = "x-fal-object-lifecycle-preference";

pub fn lifecycle_preference(expiration_s: u64) -> String {
    serde_json::json!({ "expiration_duration_seconds": expiration_s }).to_string()
}

async fn exchange(
    method: Method,
    url: &str,
    key: Option<&str>,
    body: Option<String>,
    extra: &[(&str, &str)],
    bounds: Bounds,
) -> Result<(u16, String), FalFailure> {
    let authorization = key.map(|k| format!("Key {k}"));
    let mut headers = vec![("accept", "application/json")];
    headers.extend_from_slice(extra);
    if let Some(auth) = &authorization {
        headers.push(("authorization", auth));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    outbound::send(method, url, &headers, body, bounds).await.map_err(|e| match e {
        OutboundError::Timeout { after_ms } => FalFailure::Timeout { after_ms },
        OutboundError::Network(reason) => FalFailure::Network { reason },
        OutboundError::TooLarge { limit_bytes, .. } => too_large(limit_bytes),
        OutboundError::Redirected { status } => redirected(status),
    })
}
