//! Building responses: JSON bodies, and the one JSON error shape.

use crate::error::{ApiError, ApiResult};
use serde::Serialize;
use worker::{Response, ResponseBuilder};

pub fn json<T: Serialize>(status: u16, value: &T) -> ApiResult<Response> {
    let body = serde_json::to_vec(value)?;
    json_bytes(status, body)
}

/// A response from JSON already serialised (kept for idempotent replays).
pub fn json_text(status: u16, body: String) -> ApiResult<Response> {
    json_bytes(status, body.into_bytes())
}

/// One header set, not two (`Response::from_json` sets a content type we
/// would replace): every call into the runtime counts on the hot path.
fn json_bytes(status: u16, body: Vec<u8>) -> ApiResult<Response> {
    Ok(ResponseBuilder::new().with_status(status).with_header("content-type", "application/json; charset=utf-8")?.fixed(body))
}

pub fn error_response(error: ApiError) -> Response {
    if let Some(line) = error.log_line() {
        worker::console_error!("{line}");
    }
    let mut response = match json(error.status(), &error.body()) {
        Ok(r) => r,
        Err(_) => return Response::error("internal error", 500).expect("a 500 response can be built"),
    };
    let headers = response.headers_mut();
    match &error {
        ApiError::MethodNotAllowed { allowed } => {
            let _ = headers.set("allow", &allowed.join(", "));
        }
        ApiError::TooManyRequests { retry_after_s, .. } => {
            let _ = headers.set("retry-after", &retry_after_s.to_string());
        }
        _ => {}
    }
    response
}
