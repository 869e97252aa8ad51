//! Answers that break the connection, for clients' network-error paths.
//!
//! axum gives a handler no socket to drop, but when a response body fails,
//! hyper aborts the connection instead of ending the message. So each fault
//! is a body that fails at the right moment: before anything was written
//! (no answer at all), or after the headers and part of the body.

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io;
use std::time::Duration;

/// Long enough for hyper to flush what it has before the body fails; without
/// the pause it may abort with the headers still in its buffer.
const FLUSH_PAUSE: Duration = Duration::from_millis(50);

/// A 200 with `Content-Length` for all of `json`, half of it, then a dropped connection.
pub fn reset_mid_body(json: Vec<u8>) -> Response {
    let length = json.len();
    let first_half = Bytes::from(json).slice(..length / 2);
    enum Step {
        Send(Bytes),
        Fail,
        Done,
    }
    let body = futures_util::stream::unfold(Step::Send(first_half), |step| async move {
        match step {
            Step::Send(part) => Some((Ok(part), Step::Fail)),
            Step::Fail => {
                tokio::time::sleep(FLUSH_PAUSE).await;
                let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset mid-body (emulated)");
                Some((Err(reset), Step::Done))
            }
            Step::Done => None,
        }
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_LENGTH, length.to_string())],
        Body::from_stream(body),
    )
        .into_response()
}

/// The connection closes with nothing written: the body fails before hyper
/// has flushed the status line.
pub fn close_without_answer() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, _>(io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed without an answer (emulated)"))
    });
    (StatusCode::OK, Body::from_stream(body)).into_response()
}
