//! Calls to FAL over `fetch`, always bounded by a timeout: a hanging upstream
//! must turn into a 504 for the shopper, never into a request that never ends.

use super::models::{interpret_response, FalFailure, FalOutput};
use crate::config::Config;
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{AbortController, Date, Delay, Fetch, Headers, Method, Request, RequestInit};

pub struct FalCall {
    pub result: Result<FalOutput, FalFailure>,
    pub duration_ms: u64,
}

/// `POST {FAL_BASE_URL}/{endpoint}`: the synchronous API.
pub async fn run_sync(config: &Config, endpoint: &str, input: &serde_json::Value) -> FalCall {
    let started = Date::now().as_millis();
    let result = match &config.fal_key {
        None => Err(FalFailure::Unauthorized { status: 0 }),
        Some(key) => {
            let url = format!("{}/{}", config.fal_base_url, endpoint);
            post_json(&url, key.expose(), input, config.fal_timeout_ms)
                .await
                .and_then(|(status, body)| interpret_response(status, &body))
        }
    };
    FalCall { result, duration_ms: Date::now().as_millis().saturating_sub(started) }
}

async fn post_json(url: &str, key: &str, body: &serde_json::Value, timeout_ms: u64) -> Result<(u16, String), FalFailure> {
    let headers = Headers::new();
    headers.set("authorization", &format!("Key {key}")).map_err(network)?;
    headers.set("content-type", "application/json").map_err(network)?;
    headers.set("accept", "application/json").map_err(network)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&body.to_string())));
    let request = Request::new_with_init(url, &init).map_err(network)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    // Both the headers and the body must arrive within the timeout.
    let exchange = async move {
        let mut response = Fetch::Request(request).send_with_signal(&signal).await.map_err(network)?;
        let status = response.status_code();
        let text = response.text().await.map_err(network)?;
        Ok((status, text))
    };
    let timeout = Delay::from(Duration::from_millis(timeout_ms));
    match select(Box::pin(exchange), timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(FalFailure::Timeout { after_ms: timeout_ms })
        }
    }
}

fn network(e: worker::Error) -> FalFailure {
    FalFailure::Network { reason: e.to_string() }
}
