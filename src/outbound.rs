//! Outbound HTTP over `fetch`, always bounded by a timeout: a hanging peer
//! must never hold a request (or a background task) open.

use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

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
        match send(Method::Post, url, &pairs, Some(body.to_string()), timeout_ms).await {
            Ok((status, _)) if (200..300).contains(&status) => return true,
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
