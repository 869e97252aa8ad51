//! `GET /queue/{owner}/{app}/requests/{id}/status/stream`: FAL's streaming
//! form of the status URL. It answers `text/event-stream`; each event is one
//! `data:` line holding the same JSON the status URL returns, sent for the
//! current status at once and again on every change. The stream closes
//! after the COMPLETED event, and a comment line keeps a quiet connection
//! open, as FAL does every 15 seconds.
//!
//! ```text
//! data: {"queue_position":0,"response_url":"…/requests/ID","status":"IN_QUEUE"}
//!
//! data: {"logs":[],"response_url":"…/requests/ID","status":"IN_PROGRESS"}
//!
//! data: {"logs":[],"metrics":{},"response_url":"…/requests/ID","status":"COMPLETED"}
//!
//! ```

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use crate::queue::{lookup, not_found, record_call, status_body, unauthorized, RequestIds};
use crate::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn open(state: Arc<AppState>, (owner, app, id): RequestIds, headers: HeaderMap) -> Response {
    if !record_call(&state, "GET", format!("/queue/{owner}/{app}/requests/{id}/status/stream"), &headers) {
        return unauthorized();
    }
    let app_id = format!("{owner}/{app}");
    let Some(request) = lookup(&state, &app_id, &id) else { return not_found() };
    let events = Watch { state, app_id, id, last_sent: None, ends_after_first: request.drops_stream, ended: false };
    let headers = [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")];
    (StatusCode::OK, headers, Body::from_stream(futures_util::stream::unfold(events, Watch::next))).into_response()
}

/// One stream's progress through a request's statuses.
struct Watch {
    state: Arc<AppState>,
    app_id: String,
    id: String,
    last_sent: Option<Value>,
    /// A `StreamDrop` fault: end after the first event, without COMPLETED.
    ends_after_first: bool,
    ended: bool,
}

impl Watch {
    /// The next chunk to send: an event when the status differs from the
    /// last one sent, else a keep-alive comment after a quiet spell.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            let state = self.state.clone();
            // Registered before reading the phase, so a change made between
            // the read and the wait still wakes this stream.
            let changed = state.phase_changed.notified();
            let request = lookup(&state, &self.app_id, &self.id)?;
            let (_, status) = status_body(&state, &self.app_id, &self.id, &request.phase);
            if self.last_sent.as_ref() != Some(&status) {
                self.ended = status["status"] == "COMPLETED" || self.ends_after_first;
                let event = Bytes::from(format!("data: {status}\n\n"));
                self.last_sent = Some(status);
                return Some((Ok(event), self));
            }
            if tokio::time::timeout(KEEP_ALIVE, changed).await.is_err() {
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self));
            }
        }
    }
}
