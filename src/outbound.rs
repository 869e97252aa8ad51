//! Outbound HTTP over `fetch`, always bounded by a timeout: a hanging peer
//! must never hold a request (or a background task) open.

use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    Timeout { after_ms: u64 },
    Network(String),
}

/// Sends and reads the whole answer within `timeout_ms`; returns its status and body.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
    timeout_ms: u64,
) -> Result<(u16, String), OutboundError> {
    let network = |e: worker::Error| OutboundError::Network(e.to_string());
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
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
        let text = body_text(response).await.map_err(network)?;
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

/// Sends a request and returns the response as soon as its headers arrive
/// (within `timeout_ms`), its body unread: for streams.
pub async fn open(method: Method, url: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Result<worker::Response, OutboundError> {
    let network = |e: worker::Error| OutboundError::Network(e.to_string());
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    let request = Request::new_with_init(url, &init).map_err(network)?;
    let exchange = async move { Fetch::Request(request).send().await };
    let outcome = match select(Box::pin(exchange), Delay::from(Duration::from_millis(timeout_ms))).await {
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

/// POSTs `body` once and returns only the status: the answer's body is never
/// read (a receiver cannot make us hold a large one), redirects are not
/// followed (signed events and bearer tokens go to the address the client
/// or operator gave, nowhere else), and headers must arrive within
/// `timeout_ms`. The delivery of outbound events builds its retries on this.
pub async fn post_once(url: &str, headers: &[(String, String)], body: &str, timeout_ms: u64) -> Result<u16, OutboundError> {
    let network = |e: worker::Error| OutboundError::Network(e.to_string());
    let h = Headers::new();
    for (name, value) in headers {
        h.set(name, value).map_err(network)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(h)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(JsValue::from_str(body)));
    let request = Request::new_with_init(url, &init).map_err(network)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async move {
        let response = Fetch::Request(request).send_with_signal(&signal).await.map_err(network)?;
        let status = response.status_code();
        discard_body(response).await;
        Ok(status)
    };
    match select(Box::pin(exchange), Delay::from(Duration::from_millis(timeout_ms))).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(OutboundError::Timeout { after_ms: timeout_ms })
        }
    }
}

/// Cancels a response body we will not read, so its connection is released
/// at once instead of when the runtime notices.
async fn discard_body(response: worker::Response) {
    let response: worker::web_sys::Response = response.into();
    if let Some(stream) = response.body() {
        let _ = worker::wasm_bindgen_futures::JsFuture::from(stream.cancel()).await;
    }
}
