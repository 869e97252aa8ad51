//! The one error type of the API. Every variant becomes
//! `{"error":{"code","message"}}` with the status its doc comment gives;
//! storage and unexpected errors become an opaque 500 after being logged.

use crate::domain::input::InputError;
use crate::fal::models::FalFailure;

#[derive(Debug)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, bad query parameter).
    BadRequest { code: &'static str, message: String },
    /// 401: no credential, or one we do not accept.
    Unauthenticated { code: &'static str, message: String },
    /// 403: a valid credential that may not do this.
    Forbidden { code: &'static str, message: String },
    /// 404: unknown, or belonging to another client (never told apart).
    NotFound { message: String },
    /// 405, with the methods the path accepts.
    MethodNotAllowed { allowed: Vec<&'static str> },
    /// 409: conflicts with the current state.
    Conflict { code: &'static str, message: String },
    /// 410: it existed, and is gone for good (an image past its retention).
    Gone { code: &'static str, message: String },
    /// 413: body over the cap.
    PayloadTooLarge { limit_bytes: usize },
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: well-formed input we cannot accept, or input FAL refused.
    Invalid { code: &'static str, message: String },
    /// 429: a limit was reached; `retry_after_s` feeds `Retry-After`.
    TooManyRequests { code: &'static str, message: String, retry_after_s: u64 },
    /// 502/503/504: FAL did not produce an image (see `FalFailure`).
    Upstream(FalFailure),
    /// 503: a dependency of ours is unavailable or misconfigured.
    Unavailable { message: String },
    /// 500: logged with its cause; the client sees an opaque message.
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated { code, message: message.into() }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden { code, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound { message: message.into() }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthenticated { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict { .. } => 409,
            Self::Gone { .. } => 410,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType => 415,
            Self::Invalid { .. } => 422,
            Self::TooManyRequests { .. } => 429,
            Self::Upstream(f) => match f {
                FalFailure::Rejected { .. } => 422,
                FalFailure::Busy => 503,
                FalFailure::Timeout { .. } => 504,
                _ => 502,
            },
            Self::Unavailable { .. } => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Invalid { code, .. }
            | Self::TooManyRequests { code, .. } => code,
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Upstream(f) => match f {
                FalFailure::Rejected { .. } => "upstream_rejected_input",
                FalFailure::Busy => "upstream_busy",
                FalFailure::Timeout { .. } => "upstream_timeout",
                FalFailure::Malformed { .. } | FalFailure::UnusableOutput { .. } => "upstream_malformed_response",
                FalFailure::Unauthorized { .. } | FalFailure::Failed { .. } | FalFailure::Network { .. } => {
                    "upstream_error"
                }
            },
            Self::Unavailable { .. } => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadRequest { message, .. }
            | Self::Unauthenticated { message, .. }
            | Self::Forbidden { message, .. }
            | Self::NotFound { message }
            | Self::Conflict { message, .. }
            | Self::Gone { message, .. }
            | Self::Invalid { message, .. }
            | Self::TooManyRequests { message, .. }
            | Self::Unavailable { message } => message.clone(),
            Self::MethodNotAllowed { allowed } => {
                format!("this path accepts {}", allowed.join(", "))
            }
            Self::PayloadTooLarge { limit_bytes } => {
                format!("the request body is larger than {limit_bytes} bytes")
            }
            Self::UnsupportedMediaType => "send the body as application/json".into(),
            // Credentials and internals stay out of client-facing messages.
            Self::Upstream(FalFailure::Unauthorized { .. }) => {
                "the image service refused our request; the operators have been alerted".into()
            }
            Self::Upstream(FalFailure::Network { .. }) => "the image service could not be reached".into(),
            Self::Upstream(f) => f.describe(),
            Self::Internal(_) => "an unexpected error occurred".into(),
        }
    }

    /// What should be logged: 5xx causes, in full.
    pub fn log_line(&self) -> Option<String> {
        match self {
            Self::Internal(cause) => Some(format!("internal error: {cause}")),
            Self::Upstream(f) if self.status() >= 500 => Some(format!("upstream failure: {}", f.describe())),
            Self::Unavailable { message } => Some(format!("unavailable: {message}")),
            _ => None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.message() } })
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Malformed(message) => Self::BadRequest { code: "malformed_json", message },
            InputError::Invalid { code, message } => Self::Invalid { code, message },
        }
    }
}

impl From<FalFailure> for ApiError {
    fn from(f: FalFailure) -> Self {
        Self::Upstream(f)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        assert_eq!(ApiError::Upstream(FalFailure::Timeout { after_ms: 5 }).status(), 504);
        assert_eq!(ApiError::Upstream(FalFailure::Failed { status: 500, reason: "x".into() }).status(), 502);
        assert_eq!(ApiError::Upstream(FalFailure::Malformed { reason: "x".into() }).status(), 502);
        let unusable = ApiError::Upstream(FalFailure::UnusableOutput { reason: "the output file is not a PNG, JPEG or WebP image".into() });
        assert_eq!((unusable.status(), unusable.code()), (502, "upstream_malformed_response"));
        let rejected = ApiError::Upstream(FalFailure::Rejected { reason: "person_image_url: bad".into() });
        assert_eq!((rejected.status(), rejected.code()), (422, "upstream_rejected_input"));
        assert!(rejected.message().contains("person_image_url: bad"));
    }

    #[test]
    fn internal_details_never_reach_the_body() {
        let e = ApiError::Internal("D1_ERROR: no such table: clients".into());
        assert_eq!(e.body()["error"]["message"], "an unexpected error occurred");
        assert!(e.log_line().unwrap().contains("no such table"));
        let auth = ApiError::Upstream(FalFailure::Unauthorized { status: 401 });
        assert!(!auth.message().contains("401"));
    }

    #[test]
    fn input_errors_become_400_or_422() {
        assert_eq!(ApiError::from(InputError::Malformed("x".into())).status(), 400);
        assert_eq!(ApiError::from(InputError::invalid("unknown_model", "x")).status(), 422);
    }
}
