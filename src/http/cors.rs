//! Browser access for the widget. Preflights are answered without
//! authentication (they carry no key); the real request is then checked
//! against the client's allowed origins once its key is known.

use worker::{Headers, Response};

const ALLOWED_HEADERS: &str = "x-api-key, content-type, idempotency-key, authorization, x-tryon-shopper, last-event-id";
const EXPOSED_HEADERS: &str = "ratelimit, ratelimit-policy, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after, location, server-timing";

pub fn preflight(origin: Option<&str>) -> Response {
    let mut response = Response::empty().expect("an empty response builds").with_status(204);
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        allow(headers, origin);
        let _ = headers.set("access-control-allow-methods", "GET, POST, DELETE, OPTIONS");
        let _ = headers.set("access-control-allow-headers", ALLOWED_HEADERS);
        let _ = headers.set("access-control-max-age", "600");
    }
    response
}

pub fn allow(headers: &mut Headers, origin: &str) {
    let _ = headers.set("access-control-allow-origin", origin);
    let _ = headers.set("access-control-expose-headers", EXPOSED_HEADERS);
    let _ = headers.append("vary", "Origin");
}
