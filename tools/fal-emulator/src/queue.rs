//! The queue API (`https://queue.fal.run`), served under `/queue`:
//!
//! - `POST /queue/{model_id}?fal_webhook=URL` → `{request_id, status_url, response_url, cancel_url, …}`
//! - `GET  /queue/{app}/requests/{id}/status` → `IN_QUEUE` (with `queue_position`) | `IN_PROGRESS` | `COMPLETED`
//! - `GET  /queue/{app}/requests/{id}/status/stream` → the same statuses as server-sent events (see `status_stream`)
//! - `GET  /queue/{app}/requests/{id}` → the result (or FAL's error for a failed request)
//! - `PUT  /queue/{app}/requests/{id}/cancel`
//!
//! As on FAL, the status, result and cancel URLs name only the app
//! (`owner/app`), not the model's sub-path — callers must use the URLs they
//! were given, never rebuild them. When a request completes, its webhook is
//! delivered signed (see `webhook`), subject to the fault the request carries.

use crate::faults::FaultMode;
use crate::sync::{accept_post, generate, immediate_failure, is_authorized, output_answer};
use crate::{fal_error, spoiled_results, status_stream, webhook, AppState, RecordedRequest};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits `IN_QUEUE` before running.
const QUEUE_WAIT_MS: u64 = 150;

#[derive(Debug, Clone)]
pub enum Phase {
    InQueue,
    InProgress,
    Completed(Result<Value, (u16, Value)>),
    Canceled,
}

#[derive(Debug, Clone)]
pub struct QueuedRequest {
    pub app: String,
    pub phase: Phase,
    /// The submitted body, so tests can find their request by marker, and
    /// faults that apply to later calls can match it.
    pub input: String,
    /// Its status stream ends after the first event (a `StreamDrop` fault).
    pub drops_stream: bool,
}

/// Which call on a queued request a URL names.
#[derive(Debug, PartialEq, Eq)]
enum RequestCall {
    Status,
    StatusStream,
    Result,
    Cancel,
}

/// The `owner`, `app` and request id of a request URL.
pub type RequestIds = (String, String, String);

/// Splits `{owner}/{app}/requests/{id}[/status[/stream] | /cancel]`.
fn parse_request_call(path: &str) -> Option<(RequestIds, RequestCall)> {
    let segments: Vec<&str> = path.split('/').collect();
    let (ids, tail) = match segments.as_slice() {
        [owner, app, "requests", id, tail @ ..] => ((owner.to_string(), app.to_string(), id.to_string()), tail),
        _ => return None,
    };
    let call = match tail {
        [] => RequestCall::Result,
        ["status"] => RequestCall::Status,
        ["status", "stream"] => RequestCall::StatusStream,
        ["cancel"] => RequestCall::Cancel,
        _ => return None,
    };
    Some((ids, call))
}

#[derive(Deserialize)]
pub struct SubmitQuery {
    fal_webhook: Option<String>,
}

/// One entry for the whole queue API: a submission names a model with any
/// number of segments, which a router cannot tell apart from request URLs.
pub async fn route(
    State(state): State<Arc<AppState>>,
    method: Method,
    Path(path): Path<String>,
    query: Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST {
        return submit(state, path.clone(), query.0, headers, body).await;
    }
    let call = parse_request_call(&path);
    match (method, call) {
        (Method::GET, Some((ids, RequestCall::Status))) => status(state, ids, headers).await,
        (Method::GET, Some((ids, RequestCall::StatusStream))) => status_stream::open(state, ids, headers).await,
        (Method::GET, Some((ids, RequestCall::Result))) => result(state, ids, headers).await,
        (Method::PUT, Some((ids, RequestCall::Cancel))) => cancel(state, ids, headers).await,
        (Method::GET | Method::PUT, _) => not_found(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn submit(state: Arc<AppState>, model_id: String, query: SubmitQuery, headers: HeaderMap, body: Bytes) -> Response {
    let text = match accept_post(&state, format!("/queue/{model_id}"), &headers, &body) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    // Faults that cut a connection apply to result fetches, and are taken then.
    let faults = state.faults.take_where(&text, |mode| !mode.cuts_connection());
    if let Some(answer) = faults.iter().find_map(|f| immediate_failure(f.mode)) {
        return answer;
    }
    let input: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fal_error(StatusCode::UNPROCESSABLE_ENTITY, json!([{ "loc": ["body"], "msg": format!("Invalid JSON: {e}"), "type": "json_invalid" }])),
    };
    let app: String = model_id.split('/').take(2).collect::<Vec<_>>().join("/");
    let request_id = uuid_like();
    let drops_stream = faults.iter().any(|f| f.mode == FaultMode::StreamDrop);
    let queued = QueuedRequest { app: app.clone(), phase: Phase::InQueue, input: text, drops_stream };
    state.queue.lock().unwrap().insert(request_id.clone(), queued);
    let origin = if faults.iter().any(|f| f.mode == FaultMode::ForeignQueueUrls) {
        state.base_url.replace("127.0.0.1", "localhost")
    } else {
        state.base_url.clone()
    };
    let base = format!("{origin}/queue/{app}/requests/{request_id}");
    tokio::spawn(run(state.clone(), model_id, request_id.clone(), input, query.fal_webhook, faults));
    (
        StatusCode::OK,
        Json(json!({
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": "IN_QUEUE",
            "queue_position": 0,
            "response_url": base,
            "status_url": format!("{base}/status"),
            "cancel_url": format!("{base}/cancel"),
        })),
    )
        .into_response()
}

async fn run(
    state: Arc<AppState>,
    model_id: String,
    request_id: String,
    input: Value,
    webhook_url: Option<String>,
    faults: Vec<crate::faults::Fault>,
) {
    let has = |mode: FaultMode| faults.iter().find(|f| f.mode == mode);
    let queued_ms = has(FaultMode::SlowQueue).map_or(QUEUE_WAIT_MS, |f| f.delay_ms.max(QUEUE_WAIT_MS));
    tokio::time::sleep(Duration::from_millis(queued_ms)).await;
    if !set_phase(&state, &request_id, Phase::InProgress) {
        return; // canceled while queued
    }
    if let Some(slow) = has(FaultMode::Slow) {
        tokio::time::sleep(Duration::from_millis(slow.delay_ms)).await;
    }
    let outcome = match has(FaultMode::ErrorAfterCompleted) {
        Some(_) => Err((
            422,
            json!([{ "loc": ["body", "person_image_url"], "msg": "No person detected in the image (emulated)", "type": "value_error" }]),
        )),
        _ => generate(&state, &model_id, &input).await.map_err(|(status, detail)| (status.as_u16(), detail)),
    };
    let outcome = outcome.map(|mut output| {
        if let Some(spoiler) = faults.iter().find(|f| f.mode.spoils_result_file()) {
            spoiled_results::spoil(&state, &mut output, spoiler.mode, spoiler.delay_ms);
        }
        output
    });
    if !set_phase(&state, &request_id, Phase::Completed(outcome.clone())) {
        return; // canceled while running
    }
    if let Some(url) = webhook_url {
        let webhook_fault = faults.into_iter().find(|f| {
            matches!(f.mode, FaultMode::WebhookNever | FaultMode::WebhookTwice | FaultMode::WebhookLate | FaultMode::WebhookBadSignature)
        });
        webhook::deliver(state, url, request_id, outcome, webhook_fault).await;
    }
}

/// Moves a request on, unless it was canceled. Returns false if it was.
fn set_phase(state: &AppState, request_id: &str, phase: Phase) -> bool {
    let moved = match state.queue.lock().unwrap().get_mut(request_id) {
        Some(r) if !matches!(r.phase, Phase::Canceled) => {
            r.phase = phase;
            true
        }
        _ => false,
    };
    state.phase_changed.notify_waiters();
    moved
}

pub fn lookup(state: &AppState, app: &str, request_id: &str) -> Option<QueuedRequest> {
    state.queue.lock().unwrap().get(request_id).filter(|r| r.app == app).cloned()
}

pub fn not_found() -> Response {
    fal_error(StatusCode::NOT_FOUND, "Request not found".into())
}

/// Records a call that has no body; returns whether its key is right.
pub fn record_call(state: &AppState, method: &str, path: String, headers: &HeaderMap) -> bool {
    let authorized = is_authorized(state, headers);
    let lifecycle = crate::lifecycle_preference(headers);
    state.record(RecordedRequest { method: method.into(), path, authorized, body: Value::Null, lifecycle });
    authorized
}

pub fn unauthorized() -> Response {
    fal_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key".into())
}

/// What the status URL says about a request in `phase`, with its HTTP status.
/// The status stream sends the same JSON.
pub fn status_body(state: &AppState, app_id: &str, id: &str, phase: &Phase) -> (StatusCode, Value) {
    let response_url = format!("{}/queue/{app_id}/requests/{id}", state.base_url);
    match phase {
        Phase::InQueue => (StatusCode::ACCEPTED, json!({ "status": "IN_QUEUE", "queue_position": 0, "response_url": response_url })),
        Phase::InProgress => (StatusCode::ACCEPTED, json!({ "status": "IN_PROGRESS", "response_url": response_url, "logs": [] })),
        Phase::Completed(_) | Phase::Canceled => {
            (StatusCode::OK, json!({ "status": "COMPLETED", "response_url": response_url, "logs": [], "metrics": {} }))
        }
    }
}

async fn status(state: Arc<AppState>, (owner, app, id): (String, String, String), headers: HeaderMap) -> Response {
    if !record_call(&state, "GET", format!("/queue/{owner}/{app}/requests/{id}/status"), &headers) {
        return unauthorized();
    }
    let app_id = format!("{owner}/{app}");
    let Some(request) = lookup(&state, &app_id, &id) else { return not_found() };
    let (code, body) = status_body(&state, &app_id, &id, &request.phase);
    (code, Json(body)).into_response()
}

async fn result(state: Arc<AppState>, (owner, app, id): (String, String, String), headers: HeaderMap) -> Response {
    if !record_call(&state, "GET", format!("/queue/{owner}/{app}/requests/{id}"), &headers) {
        return unauthorized();
    }
    let Some(request) = lookup(&state, &format!("{owner}/{app}"), &id) else { return not_found() };
    match request.phase {
        Phase::Completed(Ok(output)) => {
            let cut = state.faults.take_where(&request.input, FaultMode::cuts_connection).first().map(|f| f.mode);
            output_answer(output, cut)
        }
        Phase::Completed(Err((status, detail))) => {
            fal_error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), detail)
        }
        Phase::Canceled => fal_error(StatusCode::BAD_REQUEST, "Request was cancelled".into()),
        Phase::InQueue | Phase::InProgress => fal_error(StatusCode::BAD_REQUEST, "Request is still in progress".into()),
    }
}

async fn cancel(state: Arc<AppState>, (owner, app, id): (String, String, String), headers: HeaderMap) -> Response {
    if !record_call(&state, "PUT", format!("/queue/{owner}/{app}/requests/{id}/cancel"), &headers) {
        return unauthorized();
    }
    if lookup(&state, &format!("{owner}/{app}"), &id).is_none() {
        return not_found();
    }
    let mut queue = state.queue.lock().unwrap();
    let request = queue.get_mut(&id).expect("looked up above");
    match request.phase {
        Phase::Completed(_) | Phase::Canceled => (StatusCode::BAD_REQUEST, Json(json!({ "status": "ALREADY_COMPLETED" }))).into_response(),
        Phase::InQueue | Phase::InProgress => {
            request.phase = Phase::Canceled;
            drop(queue);
            state.phase_changed.notify_waiters();
            (StatusCode::ACCEPTED, Json(json!({ "status": "CANCELLATION_REQUESTED" }))).into_response()
        }
    }
}

fn uuid_like() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> RequestIds {
        ("fal-ai".into(), "nano-banana".into(), "r1".into())
    }

    #[test]
    fn request_urls_name_their_call() {
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1"), Some((ids(), RequestCall::Result)));
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1/status"), Some((ids(), RequestCall::Status)));
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1/status/stream"), Some((ids(), RequestCall::StatusStream)));
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1/cancel"), Some((ids(), RequestCall::Cancel)));
    }

    #[test]
    fn other_urls_name_no_call() {
        assert_eq!(parse_request_call("fal-ai/nano-banana/edit"), None);
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1/status/other"), None);
        assert_eq!(parse_request_call("fal-ai/nano-banana/requests/r1/logs"), None);
    }
}
