//! The synchronous API (`POST https://fal.run/{model_id}`) and the model
//! behaviour shared with the queue.

use crate::faults::FaultMode;
use crate::{fal_error, images, severed, spoiled_results, AppState, RecordedRequest};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Records a POST, checks its key and returns its body, or the answer to give.
pub fn accept_post(state: &AppState, path: String, headers: &HeaderMap, body: &Bytes) -> Result<String, Response> {
    let text = String::from_utf8_lossy(body).to_string();
    let authorized = is_authorized(state, headers);
    state.record(RecordedRequest {
        method: "POST".into(),
        path,
        authorized,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
        lifecycle: crate::lifecycle_preference(headers),
    });
    if !authorized {
        return Err(fal_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key (use `Authorization: Key <key>`)".into()));
    }
    Ok(text)
}

/// The answer for faults that fail a request outright, the same on both APIs.
pub fn immediate_failure(mode: FaultMode) -> Option<Response> {
    match mode {
        FaultMode::Error400 => Some(fal_error(StatusCode::BAD_REQUEST, "Failed to download the file at image_url (emulated)".into())),
        FaultMode::Error500 => Some(fal_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error (emulated)".into())),
        FaultMode::Unauthorized => Some(fal_error(StatusCode::UNAUTHORIZED, "Invalid API key (emulated)".into())),
        FaultMode::RateLimited => Some(fal_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded (emulated)".into())),
        _ => None,
    }
}

pub async fn run(State(state): State<Arc<AppState>>, Path(model_id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match accept_post(&state, format!("/{model_id}"), &headers, &body) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    let fault = state.faults.take(&text);
    if let Some(fault) = &fault {
        tokio::time::sleep(Duration::from_millis(fault.wait_ms())).await;
        if let Some(answer) = immediate_failure(fault.mode) {
            return answer;
        }
        match fault.mode {
            FaultMode::Error422 => {
                return fal_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!([{ "loc": ["body", "image_url"], "msg": "Could not load the image: unsupported or corrupt file (emulated)", "type": "image_load_error" }]),
                )
            }
            FaultMode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
            FaultMode::Malformed => return (StatusCode::OK, "{\"images\": [{\"url\": ").into_response(),
            FaultMode::Redirect => {
                let location = format!("{}/_emulator/key-sink", state.base_url);
                return (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)]).into_response();
            }
            // No answer, so no need to run the model first.
            FaultMode::CloseWithoutAnswer => return severed::close_without_answer(),
            // Applied below, to the output once there is one.
            FaultMode::ResetMidBody
            | FaultMode::NonImageResult
            | FaultMode::HugeResult
            | FaultMode::ChunkedResult
            | FaultMode::ResultGone
            | FaultMode::HugeAnswer => {}
            // Handled above, or queue-only: the sync API answers normally.
            FaultMode::Error400 | FaultMode::Error500 | FaultMode::Unauthorized | FaultMode::RateLimited => {}
            FaultMode::Slow
            | FaultMode::WebhookNever
            | FaultMode::WebhookTwice
            | FaultMode::WebhookLate
            | FaultMode::WebhookBadSignature
            | FaultMode::ErrorAfterCompleted
            | FaultMode::StreamDrop
            | FaultMode::SlowQueue
            | FaultMode::ForeignQueueUrls => {}
        }
    }
    let input: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fal_error(StatusCode::UNPROCESSABLE_ENTITY, json!([{ "loc": ["body"], "msg": format!("Invalid JSON: {e}"), "type": "json_invalid" }])),
    };
    match generate(&state, &model_id, &input).await {
        Ok(mut output) => {
            if let Some(fault) = &fault {
                spoiled_results::spoil(&state, &mut output, fault.mode, fault.delay_ms);
                if fault.mode == FaultMode::HugeAnswer {
                    let size = if fault.delay_ms == 0 { 3 * 1024 * 1024 } else { fault.delay_ms as usize };
                    output["description"] = Value::String("x".repeat(size));
                }
            }
            output_answer(output, fault.map(|f| f.mode))
        }
        Err((status, detail)) => fal_error(status, detail),
    }
}

/// A model's output as the answer to a call, unless a fault cuts the connection.
pub fn output_answer(output: Value, fault: Option<FaultMode>) -> Response {
    match fault {
        Some(FaultMode::ResetMidBody) => severed::reset_mid_body(output.to_string().into_bytes()),
        Some(FaultMode::CloseWithoutAnswer) => severed::close_without_answer(),
        _ => Json(output).into_response(),
    }
}

pub fn is_authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let expected = format!("Key {}", state.config.api_key);
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// Runs a model on `input`: validates it the way the real endpoint does,
/// then composes the inputs into one PNG.
pub async fn generate(state: &AppState, model_id: &str, input: &Value) -> Result<Value, (StatusCode, Value)> {
    tokio::time::sleep(Duration::from_millis(state.config.latency_ms)).await;
    let (urls, description) = if model_id.ends_with("virtual-try-on") {
        let urls = required_strings(input, &["person_image_url", "clothing_image_url"])?;
        (urls, None)
    } else if model_id.contains("nano-banana") {
        required_strings(input, &["prompt"])?;
        let urls: Vec<String> = input["image_urls"]
            .as_array()
            .filter(|a| !a.is_empty())
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .ok_or_else(|| missing("image_urls"))?;
        let described = format!("Emulated try-on composing {} garment(s).", urls.len().saturating_sub(1));
        (urls, Some(described))
    } else {
        return Err((StatusCode::NOT_FOUND, json!(format!("Application '{model_id}' not found"))));
    };
    let (url, width, height) = if state.config.compose {
        let mut inputs = Vec::with_capacity(urls.len());
        for url in &urls {
            inputs.push(load_image(state, url).await);
        }
        let png = images::encode_png(&images::side_by_side(&inputs));
        let (width, height) = image::load_from_memory(&png).map(|i| (i.width(), i.height())).unwrap_or((0, 0));
        (state.store_file(png), width, height)
    } else {
        (format!("{}/samples/person.png", state.base_url), 256, 384)
    };
    let mut output = json!({
        "images": [{ "url": url, "width": width, "height": height, "content_type": "image/png" }],
        "seed": 42,
    });
    if let Some(d) = description {
        output["description"] = json!(d);
    }
    Ok(output)
}

fn missing(field: &str) -> (StatusCode, Value) {
    (StatusCode::UNPROCESSABLE_ENTITY, json!([{ "loc": ["body", field], "msg": "field required", "type": "missing" }]))
}

fn required_strings(input: &Value, fields: &[&str]) -> Result<Vec<String>, (StatusCode, Value)> {
    fields
        .iter()
        .map(|f| input[*f].as_str().map(String::from).ok_or_else(|| missing(f)))
        .collect()
}

/// Decodes a data URI or downloads a URL; anything it cannot read becomes a
/// placeholder tile, since the emulator has no internet to fetch real inputs.
async fn load_image(state: &AppState, url: &str) -> image::RgbaImage {
    let bytes = if let Some(rest) = url.strip_prefix("data:") {
        rest.split_once(',').and_then(|(_, b64)| base64::engine::general_purpose::STANDARD.decode(b64).ok())
    } else {
        match state.http.get(url).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.ok().map(|b| b.to_vec()),
            _ => None,
        }
    };
    bytes
        .and_then(|b| image::load_from_memory(&b).ok())
        .map(|i| i.to_rgba8())
        .unwrap_or_else(|| images::placeholder(url))
}
