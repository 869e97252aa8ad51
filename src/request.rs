//! Reading a request: headers, query parameters, and bodies under a size cap.

use crate::bounded::{read_stream, Capped, Overflow};
use crate::error::{ApiError, ApiResult};
use worker::Request;

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Query parameters as (name, value) pairs.
pub fn query_pairs(req: &Request) -> ApiResult<Vec<(String, String)>> {
    let url = req.url()?;
    Ok(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Reads a JSON body, refusing other media types (415) and bodies over the cap
/// (413) before parsing anything.
pub async fn read_json_body(req: &mut Request, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let content_type = header(req, "content-type").unwrap_or_default().to_ascii_lowercase();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    read_body(req, max_bytes).await
}

/// Reads a body of any type, refusing one over the cap (413). A declared
/// length over the cap is refused before reading; a body without one
/// (chunked) is counted while it is read and refused as soon as it passes the
/// cap, so no request can make the worker buffer more than `max_bytes`.
pub async fn read_body(req: &mut Request, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let too_large = || ApiError::PayloadTooLarge { limit_bytes: max_bytes };
    let declared: Option<usize> = header(req, "content-length").and_then(|v| v.trim().parse().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let unreadable = |message: String| ApiError::bad_request("unreadable_body", message);
    let body = if declared.is_some() {
        // The framing bounds a body of declared length: read it in one call.
        req.bytes().await.map_err(|e| unreadable(e.to_string()))?
    } else {
        match read_stream(req.inner().body(), max_bytes, Overflow::Abandon).await.map_err(unreadable)? {
            Capped::Body(body) => body,
            Capped::TooLarge => return Err(too_large()),
        }
    };
    if body.len() > max_bytes {
        return Err(too_large());
    }
    Ok(body)
}
