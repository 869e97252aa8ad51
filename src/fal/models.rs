//! The one place that knows how our model names map to FAL endpoints, what
//! input each endpoint takes, and how to read what FAL answers.

use crate::domain::generation::{GenerationRequest, Model, ModelOptions};
use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_TRY_ON_PROMPT: &str = "Dress the person in the first image in the garment(s) shown in the other image(s). \
Keep the person's face, hair, body shape, skin tone, pose and the background exactly as they are. \
Fit each garment naturally to the body with realistic fabric drape, folds, lighting and shadows, \
keeping the garments' colours, patterns, logos and textures faithful. Produce one photorealistic image.";

#[derive(Clone, Debug)]
pub struct ModelRegistry {
    virtual_try_on: String,
    nano_banana_pro: String,
}

impl Default for ModelRegistry {
    fn default() -> Self {
        Self {
            virtual_try_on: "fal-ai/image-apps-v2/virtual-try-on".into(),
            nano_banana_pro: "fal-ai/nano-banana-pro/edit".into(),
        }
    }
}

impl ModelRegistry {
    /// Defaults, overridden by a JSON object such as
    /// `{"nano-banana-pro": "fal-ai/nano-banana-pro/v2/edit"}` from configuration.
    pub fn with_overrides(overrides: Option<&str>) -> Result<Self, String> {
        let mut registry = Self::default();
        let Some(raw) = overrides.filter(|s| !s.trim().is_empty()) else {
            return Ok(registry);
        };
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(raw).map_err(|e| format!("FAL_MODEL_ENDPOINTS is not a JSON object of strings: {e}"))?;
        for (name, endpoint) in map {
            let model = Model::parse(&name).ok_or_else(|| format!("FAL_MODEL_ENDPOINTS names unknown model `{name}`"))?;
            let valid = !endpoint.is_empty()
                && endpoint.split('/').all(|seg| !seg.is_empty() && !seg.starts_with('.') && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            if !valid {
                return Err(format!("FAL_MODEL_ENDPOINTS has an invalid endpoint `{endpoint}`"));
            }
            match model {
                Model::VirtualTryOn => registry.virtual_try_on = endpoint,
                Model::NanoBananaPro => registry.nano_banana_pro = endpoint,
            }
        }
        Ok(registry)
    }

    pub fn endpoint(&self, model: Model) -> &str {
        match model {
            Model::VirtualTryOn => &self.virtual_try_on,
            Model::NanoBananaPro => &self.nano_banana_pro,
        }
    }
}

/// The JSON body FAL expects for this request. It borrows the request's
/// images: a data URI can be megabytes, and serialising from borrows makes
/// the body the only copy (wasm memory never shrinks; see README "Memory").
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum FalInput<'a> {
    VirtualTryOn { person_image_url: &'a str, clothing_image_url: Option<&'a str>, preserve_pose: bool },
    NanoBananaPro {
        prompt: &'a str,
        image_urls: Vec<&'a str>,
        num_images: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        aspect_ratio: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        resolution: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_format: Option<&'a str>,
    },
}

pub fn fal_input(req: &GenerationRequest) -> FalInput<'_> {
    match &req.options {
        ModelOptions::VirtualTryOn { preserve_pose } => FalInput::VirtualTryOn {
            person_image_url: req.person.as_str(),
            clothing_image_url: req.garments.first().map(|g| g.as_str()),
            preserve_pose: *preserve_pose,
        },
        ModelOptions::NanoBananaPro { prompt, aspect_ratio, resolution, output_format } => FalInput::NanoBananaPro {
            prompt: prompt.as_deref().unwrap_or(DEFAULT_TRY_ON_PROMPT),
            image_urls: std::iter::once(&req.person).chain(&req.garments).map(|i| i.as_str()).collect(),
            num_images: 1,
            aspect_ratio: aspect_ratio.as_deref(),
            resolution: resolution.as_deref(),
            output_format: output_format.as_deref(),
        },
    }
}

/// The request body for FAL, serialised once into a buffer sized up front:
/// grown by doubling instead, a 25 MiB body would pass through a 32 MiB
/// buffer with the 16 MiB one still held while it is copied.
pub fn fal_body(req: &GenerationRequest) -> String {
    let images: usize = std::iter::once(&req.person).chain(&req.garments).map(|i| i.as_str().len() + 4).sum();
    let mut out = Vec::with_capacity(images + 1024);
    // Serialising borrowed strings and plain fields into memory cannot fail,
    // and serde_json writes UTF-8.
    if serde_json::to_writer(&mut out, &fal_input(req)).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct FalImage {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FalOutput {
    pub image: FalImage,
    pub description: Option<String>,
}

/// Why a FAL call did not produce an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FalFailure {
    /// FAL refused the input (400/422): the shopper's images, usually.
    Rejected { reason: String },
    /// FAL refused our credentials: an operator problem, never the client's.
    Unauthorized { status: u16 },
    /// FAL is overloaded or rate limiting us.
    Busy,
    /// FAL failed (5xx or an unexpected status).
    Failed { status: u16, reason: String },
    Timeout { after_ms: u64 },
    /// FAL answered 2xx with a body we cannot read.
    Malformed { reason: String },
    /// FAL's answer was fine, but the file it names is not an image we keep
    /// (not an image by its first bytes, or over the size cap).
    UnusableOutput { reason: String },
    /// The connection failed before an answer.
    Network { reason: String },
}

impl FalFailure {
    /// The sentence stored with the generation row and shown to admins.
    pub fn describe(&self) -> String {
        match self {
            FalFailure::Rejected { reason } => format!("FAL rejected the input: {reason}"),
            FalFailure::Unauthorized { status: 0 } => "FAL_KEY is not configured".into(),
            FalFailure::Unauthorized { status } => format!("FAL refused our credentials (HTTP {status})"),
            FalFailure::Busy => "FAL is rate limiting or overloaded (HTTP 429)".into(),
            FalFailure::Failed { status, reason } => format!("FAL failed with HTTP {status}: {reason}"),
            FalFailure::Timeout { after_ms } => format!("FAL did not answer within {after_ms} ms"),
            FalFailure::Malformed { reason } => format!("FAL answered with an unreadable body: {reason}"),
            FalFailure::UnusableOutput { reason } => format!("FAL's output cannot be used: {reason}"),
            FalFailure::Network { reason } => format!("could not reach FAL: {reason}"),
        }
    }
}

#[derive(Deserialize)]
struct RawSubmission {
    request_id: String,
    status_url: String,
    response_url: String,
    cancel_url: String,
}

/// FAL's answer to a queue submission. Its URLs are kept verbatim (FAL's
/// status URLs drop the model's sub-path, so they cannot be rebuilt), but
/// only on the configured queue's origin: every later call to them carries
/// our FAL key, which must never go wherever an answer says.
pub fn parse_submission(body: &str, queue_url: &str) -> Result<crate::domain::job::FalQueueRefs, FalFailure> {
    let raw: RawSubmission = serde_json::from_str(body).map_err(|e| FalFailure::Malformed { reason: e.to_string() })?;
    let expected = url::Url::parse(queue_url)
        .map_err(|e| FalFailure::Malformed { reason: format!("FAL_QUEUE_URL is not a URL: {e}") })?
        .origin();
    for (name, value) in [("status_url", &raw.status_url), ("response_url", &raw.response_url), ("cancel_url", &raw.cancel_url)] {
        let same_origin = url::Url::parse(value).is_ok_and(|u| u.origin() == expected && u.username().is_empty() && u.password().is_none());
        if !same_origin {
            return Err(FalFailure::Malformed { reason: format!("`{name}` is not on the configured FAL queue origin") });
        }
    }
    let id_ok = !raw.request_id.is_empty()
        && raw.request_id.len() <= 128
        && raw.request_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(FalFailure::Malformed { reason: "`request_id` is not an id".into() });
    }
    Ok(crate::domain::job::FalQueueRefs {
        request_id: raw.request_id,
        status_url: raw.status_url,
        response_url: raw.response_url,
        cancel_url: raw.cancel_url,
    })
}

/// The `queue_position` of a queue answer, if it has one.
pub fn queue_position_of(body: &str) -> Option<u64> {
    serde_json::from_str::<Value>(body).ok()?.get("queue_position")?.as_u64()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueStatus {
    InQueue { position: Option<u64> },
    InProgress,
    Completed,
}

pub fn parse_queue_status(body: &str) -> Result<QueueStatus, FalFailure> {
    let v: Value = serde_json::from_str(body).map_err(|e| FalFailure::Malformed { reason: e.to_string() })?;
    match v["status"].as_str() {
        Some("IN_QUEUE") => Ok(QueueStatus::InQueue { position: v["queue_position"].as_u64() }),
        Some("IN_PROGRESS") => Ok(QueueStatus::InProgress),
        Some("COMPLETED") => Ok(QueueStatus::Completed),
        other => Err(FalFailure::Malformed { reason: format!("unknown queue status {other:?}") }),
    }
}

#[derive(Deserialize)]
struct RawOutput {
    images: Vec<FalImage>,
    description: Option<String>,
}

pub fn interpret_response(status: u16, body: &str, results: ResultUrls) -> Result<FalOutput, FalFailure> {
    match status {
        200..=299 => parse_output(body, results),
        _ => Err(failure(status, body)),
    }
}

/// What a non-2xx answer from FAL means.
pub fn failure(status: u16, body: &str) -> FalFailure {
    match status {
        400 | 422 => FalFailure::Rejected { reason: error_reason(body) },
        401 | 403 => FalFailure::Unauthorized { status },
        429 => FalFailure::Busy,
        _ => FalFailure::Failed { status, reason: error_reason(body) },
    }
}

/// Which result URLs FAL may hand us. The URL goes to shoppers' browsers
/// (and is fetched by us), so only `https:` and `data:image/…` pass; plain
/// `http:` on a loopback host only where local development turned it on
/// (the emulator serves its files there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResultUrls {
    pub allow_loopback_http: bool,
}

pub fn parse_output(body: &str, results: ResultUrls) -> Result<FalOutput, FalFailure> {
    let raw: RawOutput = serde_json::from_str(body).map_err(|e| FalFailure::Malformed { reason: e.to_string() })?;
    let image = raw
        .images
        .into_iter()
        .next()
        .ok_or_else(|| FalFailure::Malformed { reason: "no image in the output".into() })?;
    if !acceptable_result_url(&image.url, results) {
        return Err(FalFailure::Malformed { reason: "the image URL is not an https URL or an image data URI".into() });
    }
    Ok(FalOutput { image, description: raw.description })
}

fn acceptable_result_url(raw: &str, results: ResultUrls) -> bool {
    if let Some(rest) = raw.strip_prefix("data:") {
        return rest.get(..6).is_some_and(|mime| mime.eq_ignore_ascii_case("image/"));
    }
    let Ok(url) = url::Url::parse(raw) else { return false };
    let host = url.host_str().unwrap_or_default();
    let plain = url.username().is_empty() && url.password().is_none();
    match url.scheme() {
        "https" => plain && !host.is_empty(),
        "http" => plain && results.allow_loopback_http && (host == "localhost" || host == "[::1]" || host.starts_with("127.")),
        _ => false,
    }
}

/// FAL errors carry `detail` as a sentence or as a list of validation errors
/// (`[{loc, msg, type}]`); either way we want one readable line.
pub fn error_reason(body: &str) -> String {
    const MAX: usize = 500;
    let reason = match serde_json::from_str::<Value>(body) {
        Ok(v) => match &v["detail"] {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    let field = item["loc"].as_array().and_then(|l| l.last()).and_then(Value::as_str);
                    let msg = item["msg"].as_str().unwrap_or("invalid");
                    match field {
                        Some(f) => format!("{f}: {msg}"),
                        None => msg.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            Value::Null => v.get("error").and_then(Value::as_str).unwrap_or("no details").to_string(),
            other => other.to_string(),
        },
        Err(_) if body.trim().is_empty() => "no details".to_string(),
        Err(_) => body.trim().to_string(),
    };
    reason.chars().take(MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image::ImagePolicy;
    use serde_json::json;

    fn request(v: Value) -> GenerationRequest {
        let policy = ImagePolicy { allow_loopback_http: false, max_data_uri_bytes: 1 << 20 };
        GenerationRequest::from_json(v.to_string().as_bytes(), &policy).unwrap()
    }

    #[test]
    fn try_on_input_uses_fal_field_names() {
        let r = request(json!({"model":"fal-virtual-try-on","person_image_url":"https://a/p.jpg","garment_image_urls":["https://a/g.jpg"],"preserve_pose":false}));
        let body: Value = serde_json::from_str(&fal_body(&r)).unwrap();
        assert_eq!(body, json!({"person_image_url":"https://a/p.jpg","clothing_image_url":"https://a/g.jpg","preserve_pose":false}));
        assert_eq!(ModelRegistry::default().endpoint(r.model), "fal-ai/image-apps-v2/virtual-try-on");
    }

    #[test]
    fn nano_banana_input_puts_the_person_first_and_defaults_the_prompt() {
        let r = request(json!({"model":"nano-banana-pro","person_image_url":"https://a/p.jpg","garment_image_urls":["https://a/g1.jpg","https://a/g2.jpg"],"resolution":"2K"}));
        let input: Value = serde_json::from_str(&fal_body(&r)).unwrap();
        assert_eq!(input["image_urls"], json!(["https://a/p.jpg","https://a/g1.jpg","https://a/g2.jpg"]));
        assert_eq!(input["num_images"], 1);
        assert_eq!(input["prompt"], DEFAULT_TRY_ON_PROMPT);
        assert_eq!(input["resolution"], "2K");
        assert!(input.get("aspect_ratio").is_none());
    }

    #[test]
    fn endpoints_can_be_overridden_but_not_with_nonsense() {
        let r = ModelRegistry::with_overrides(Some(r#"{"nano-banana-pro":"fal-ai/nano-banana-pro/v2/edit"}"#)).unwrap();
        assert_eq!(r.endpoint(Model::NanoBananaPro), "fal-ai/nano-banana-pro/v2/edit");
        assert_eq!(r.endpoint(Model::VirtualTryOn), "fal-ai/image-apps-v2/virtual-try-on");
        assert!(ModelRegistry::with_overrides(Some(r#"{"gpt":"x"}"#)).is_err());
        assert!(ModelRegistry::with_overrides(Some(r#"{"nano-banana-pro":"../../admin"}"#)).is_err());
        assert!(ModelRegistry::with_overrides(Some("")).is_ok());
    }

    #[test]
    fn queue_answers_are_read_as_given() {
        let submitted = parse_submission(r#"{"request_id":"r1","status_url":"https://q/fal-ai/image-apps-v2/requests/r1/status","response_url":"https://q/fal-ai/image-apps-v2/requests/r1","cancel_url":"https://q/fal-ai/image-apps-v2/requests/r1/cancel","queue_position":0}"#, "https://q").unwrap();
        assert_eq!(submitted.status_url, "https://q/fal-ai/image-apps-v2/requests/r1/status");
        assert!(matches!(parse_submission("{}", "https://q"), Err(FalFailure::Malformed { .. })));
        assert_eq!(parse_queue_status(r#"{"status":"IN_QUEUE","queue_position":3}"#), Ok(QueueStatus::InQueue { position: Some(3) }));
        assert_eq!(parse_queue_status(r#"{"status":"COMPLETED","logs":[]}"#), Ok(QueueStatus::Completed));
        assert!(parse_queue_status(r#"{"status":"WEIRD"}"#).is_err());
    }

    fn submission(status_url: &str) -> String {
        json!({"request_id":"r1","status_url":status_url,"response_url":"https://queue.fal.run/a/requests/r1","cancel_url":"https://queue.fal.run/a/requests/r1/cancel"}).to_string()
    }

    #[test]
    fn queue_urls_off_the_configured_origin_are_refused_so_the_key_never_follows_them() {
        let queue = "https://queue.fal.run";
        assert!(parse_submission(&submission("https://queue.fal.run/a/requests/r1/status"), queue).is_ok());
        for foreign in [
            "https://attacker.example/steal",
            "http://queue.fal.run/a/requests/r1/status",
            "https://queue.fal.run:8443/a/requests/r1/status",
            "https://queue.fal.run.attacker.example/x",
            "https://user:pw@queue.fal.run/a",
            "/relative/status",
            "",
        ] {
            assert!(matches!(parse_submission(&submission(foreign), queue), Err(FalFailure::Malformed { .. })), "{foreign}");
        }
        // The local emulator's queue lives on loopback; its own URLs pass.
        let local = r#"{"request_id":"r1","status_url":"http://127.0.0.1:9/queue/a/requests/r1/status","response_url":"http://127.0.0.1:9/queue/a/requests/r1","cancel_url":"http://127.0.0.1:9/queue/a/requests/r1/cancel"}"#;
        assert!(parse_submission(local, "http://127.0.0.1:9/queue").is_ok());
    }

    #[test]
    fn result_urls_must_be_https_or_image_data() {
        let output = |url: &str| json!({"images":[{"url":url}]}).to_string();
        let strict = ResultUrls::default();
        assert!(parse_output(&output("https://v3.fal.media/x.png"), strict).is_ok());
        assert!(parse_output(&output("data:image/png;base64,iVBORw0KGgo="), strict).is_ok());
        for bad in ["javascript:alert(1)", "http://v3.fal.media/x.png", "data:text/html,<script>", "file:///etc/passwd", "ftp://x/y.png", "http://127.0.0.1:9/files/x.png", "é"] {
            assert!(parse_output(&output(bad), strict).is_err(), "{bad}");
        }
        let local = ResultUrls { allow_loopback_http: true };
        assert!(parse_output(&output("http://127.0.0.1:9/files/x.png"), local).is_ok());
        assert!(parse_output(&output("http://fal.example/x.png"), local).is_err());
    }

    #[test]
    fn responses_map_to_outputs_and_failures() {
        let ok = r#"{"images":[{"url":"https://v3.fal.media/x.png","width":768,"height":1024,"content_type":"image/png"}],"description":"done"}"#;
        let out = interpret_response(200, ok, ResultUrls::default()).unwrap();
        assert_eq!(out.image.url, "https://v3.fal.media/x.png");
        assert_eq!(out.description.as_deref(), Some("done"));

        let invalid = r#"{"detail":[{"loc":["body","person_image_url"],"msg":"Could not download image","type":"image_load_error"}]}"#;
        assert_eq!(interpret_response(422, invalid, ResultUrls::default()), Err(FalFailure::Rejected { reason: "person_image_url: Could not download image".into() }));
        assert_eq!(interpret_response(500, r#"{"detail":"Internal error"}"#, ResultUrls::default()), Err(FalFailure::Failed { status: 500, reason: "Internal error".into() }));
        assert_eq!(interpret_response(401, "", ResultUrls::default()), Err(FalFailure::Unauthorized { status: 401 }));
        assert_eq!(interpret_response(429, "", ResultUrls::default()), Err(FalFailure::Busy));
        assert!(matches!(interpret_response(200, "{not json", ResultUrls::default()), Err(FalFailure::Malformed { .. })));
        assert!(matches!(interpret_response(200, r#"{"images":[]}"#, ResultUrls::default()), Err(FalFailure::Malformed { .. })));
        assert_eq!(error_reason("<html>Bad Gateway</html>"), "<html>Bad Gateway</html>");
    }
}
