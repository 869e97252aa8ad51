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
    // The body's only copy goes to the runtime here and is freed at once.
    let request = build(method, url, headers.iter().copied(), bounds.follow_redirects, body.as_deref())?;
    drop(body);
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
    within(bounds.timeout_ms, controller, exchange).await
}

fn network(e: worker::Error) -> OutboundError {
    OutboundError::Network(e.to_string())
}

/// The request, with redirects followed or not.
fn build<'a>(
    method: Method,
    url: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    follow_redirects: bool,
    body: Option<&str>,
) -> Result<Request, OutboundError> {
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    let redirect = if follow_redirects { RequestRedirect::Follow } else { RequestRedirect::Manual };
    init.with_method(method).with_headers(h).with_redirect(redirect);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from_str(body)));
    }
    Request::new_with_init(url, &init).map_err(network)
}

/// Runs `exchange`, or aborts it (through `controller`) after `timeout_ms`.
async fn within<T>(
    timeout_ms: u64,
    controller: AbortController,
    exchange: impl std::future::Future<Output = Result<T, OutboundError>>,
) -> Result<T, OutboundError> {
    match select(Box::pin(exchange), Delay::from(Duration::from_millis(timeout_ms))).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(OutboundError::Timeout { after_ms: timeout_ms })
        }
    }
}

/// Sends a request and returns the response as soon as its headers arrive
/// (within `timeout_ms`), its body unread: for streams, whose reader bounds
/// what it keeps. Redirects are not followed (the call carries FAL's key).
pub async fn open(method: Method, url: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Result<worker::Response, OutboundError> {
    let request = build(method, url, headers.iter().copied(), false, None)?;
    let exchange = async move { Fetch::Request(request).send().await };
    let outcome = match select(Box::pin(exchange), Delay::from(Duration::from_millis(timeout_ms))).await {
        Either::Left((Ok(response), _)) if (300..400).contains(&response.status_code()) => {
            Err(OutboundError::Redirected { status: response.status_code() })
        }
        Either::Left((result, _)) => result.map_err(network),
        Either::Right(_) => Err(OutboundError::Timeout { after_ms: timeout_ms }),
    };
    outcome
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

/// POSTs `body` once and returns only the status: the answer's body is never
/// read (a receiver cannot make us hold a large one), redirects are not
/// followed (signed events and bearer tokens go to the address the client
/// or operator gave, nowhere else), and headers must arrive within
/// `timeout_ms`. The delivery of outbound events builds its retries on this.
pub async fn post_once(url: &str, headers: &[(String, String)], body: &str, timeout_ms: u64) -> Result<u16, OutboundError> {
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let request = build(Method::Post, url, pairs, false, Some(body))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async move {
        let response = Fetch::Request(request).send_with_signal(&signal).await.map_err(network)?;
        let status = response.status_code();
        discard_body(response).await;
        Ok(status)
    };
    within(timeout_ms, controller, exchange).await
}

/// Cancels a response body we will not read, so its connection is released
/// at once instead of when the runtime notices.
async fn discard_body(response: worker::Response) {
    let response: worker::web_sys::Response = response.into();
    if let Some(stream) = response.body() {
        let _ = worker::wasm_bindgen_futures::JsFuture::from(stream.cancel()).await;
    }
}
