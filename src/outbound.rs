//! Outbound HTTP over `fetch`, always bounded: by a timeout (a hanging peer
//! must never hold a request, or a background task, open) and by a size cap
//! on what the peer answers (a third party must not be able to make the
//! worker buffer more than we expect of it).

use crate::bounded::{fits, read_stream, Capped, Overflow};
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    Timeout { after_ms: u64 },
    Network(String),
    /// The answer (with `status`) had a body past `limit_bytes`; reading stopped there.
    TooLarge { status: u16, limit_bytes: usize },
    /// A redirect, which this call does not follow.
    Redirected { status: u16 },
}

/// What one call may take: time, answer size, and whether redirects are followed.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub timeout_ms: u64,
    pub max_body_bytes: usize,
    /// Calls that carry a credential never follow a redirect: the credential
    /// would travel to wherever the `Location` points.
    pub follow_redirects: bool,
}

/// Sends and reads the whole answer within the bounds; returns its status and body.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
    bounds: Bounds,
) -> Result<(u16, String), OutboundError> {
    let timeout_ms = bounds.timeout_ms;
    let network = |e: worker::Error| OutboundError::Network(e.to_string());
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    let redirect = if bounds.follow_redirects { RequestRedirect::Follow } else { RequestRedirect::Manual };
    init.with_method(method).with_headers(h).with_redirect(redirect);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from_str(&body)));
    }
    let request = Request::new_with_init(url, &init).map_err(network)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    // Both the headers and the body must arrive within the timeout.
    let exchange = async move {
        let response = Fetch::Request(request).send_with_signal(&signal).await.map_err(network)?;
        let status = response.status_code();
        if !bounds.follow_redirects && (300..400).contains(&status) {
            return Err(OutboundError::Redirected { status });
        }
        let text = capped_text(response, bounds.max_body_bytes).await.map_err(|limit_bytes| match limit_bytes {
            Some(limit_bytes) => OutboundError::TooLarge { status, limit_bytes },
            None => OutboundError::Network("the answer is not UTF-8 text or could not be read".into()),
        })?;
        Ok((status, text))
    };
    match select(Box::pin(exchange), Delay::from(Duration::from_millis(timeout_ms))).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(OutboundError::Timeout { after_ms: timeout_ms })
        }
    }
}

/// A fetched response's whole body as text, in one call into the runtime.
/// (`worker::Response::text` reads it chunk by chunk through a stream reader
/// whose release builds a JS error with a stack trace: far slower per call.)
pub async fn body_text(response: worker::Response) -> worker::Result<String> {
    let response: worker::web_sys::Response = response.into();
    let text = worker::wasm_bindgen_futures::JsFuture::from(response.text()?).await?;
    text.as_string().ok_or_else(|| worker::Error::RustError("the response body is not text".into()))
}

/// A third party's answer as text, refused past `max_bytes`: a declared
/// length is checked before reading; without one, the body is counted as it
/// streams in.
/// `Err(Some(cap))` when the body passed the cap, `Err(None)` when it could
/// not be read as text.
async fn capped_text(response: worker::Response, max_bytes: usize) -> Result<String, Option<usize>> {
    let too_large = Some(max_bytes);
    let header = |name: &str| response.headers().get(name).ok().flatten();
    // A compressed body's declared length says nothing of what it inflates to.
    let encoded = header("content-encoding").is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    let declared: Option<usize> = header("content-length").and_then(|v| v.trim().parse().ok()).filter(|_| !encoded);
    let response: worker::web_sys::Response = response.into();
    let bytes = match declared {
        Some(n) if !fits(0, n, max_bytes) => {
            if let Some(stream) = response.body() {
                let _ = stream.cancel();
            }
            return Err(too_large);
        }
        // A declared length within the cap bounds the body: one call reads it.
        Some(_) => {
            let text = response.text().map_err(|_| None)?;
            let text = worker::wasm_bindgen_futures::JsFuture::from(text).await.map_err(|_| None)?;
            return text.as_string().ok_or(None);
        }
        None => match read_stream(response.body(), max_bytes, Overflow::Cancel).await.map_err(|_| None)? {
            Capped::Body(bytes) => bytes,
            Capped::TooLarge => return Err(too_large),
        },
    };
    String::from_utf8(bytes).map_err(|_| None)
}

/// What a notification receiver may answer with.
const DELIVERY_ANSWER_BYTES: usize = 16 * 1024;

/// Delivers `body` to `url` in the background style our notifications use:
/// up to `backoff_ms.len() + 1` attempts, waiting `backoff_ms[i]` after the
/// i-th failure, each bounded by `timeout_ms`. `headers` is asked afresh for
/// each attempt (a signature may cover the attempt's timestamp). Returns
/// whether a 2xx came back; failures are logged under `label`.
pub async fn deliver(
    url: &str,
    headers: impl Fn() -> Vec<(String, String)>,
    body: &str,
    timeout_ms: u64,
    backoff_ms: &[u64],
    label: &str,
) -> bool {
    let attempts = backoff_ms.len() + 1;
    for attempt in 0..attempts {
        let owned = headers();
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Only the status matters; the receiver's body is read no further
        // than a short error message, and its redirects are not followed.
        let bounds = Bounds { timeout_ms, max_body_bytes: DELIVERY_ANSWER_BYTES, follow_redirects: false };
        match send(Method::Post, url, &pairs, Some(body.to_string()), bounds).await {
            Ok((status, _)) | Err(OutboundError::TooLarge { status, .. }) if (200..300).contains(&status) => return true,
            Ok((status, _)) => worker::console_warn!("{label} attempt {}: HTTP {status}", attempt + 1),
            Err(e) => worker::console_warn!("{label} attempt {}: {e:?}", attempt + 1),
        }
        if let Some(wait) = backoff_ms.get(attempt) {
            Delay::from(Duration::from_millis(*wait)).await;
        }
    }
    worker::console_error!("{label} was not delivered after {attempts} attempts");
    false
}
