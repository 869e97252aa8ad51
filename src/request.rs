//! Reading a request: headers, query parameters, and bodies under a size cap.

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

/// Reads a body of any type, refusing one over the cap (413): by its
/// declared length before reading, and by its real length after.
pub async fn read_body(req: &mut Request, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let declared: Option<usize> = header(req, "content-length").and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(ApiError::PayloadTooLarge { limit_bytes: max_bytes });
    }
    let body = req.bytes().await.map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
    if body.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge { limit_bytes: max_bytes });
    }
    Ok(body)
}
