//! Outputs that look right but whose file is not: the JSON is what FAL
//! returns, and only downloading `images[0].url` shows the problem. This is
//! where a client's checks on what it downloads (type, size, presence) are
//! exercised.

use axum::body::Bytes;
use serde_json::{json, Value};

use crate::faults::FaultMode;
use crate::files::{fresh_name, FileBody};
use crate::AppState;

/// Used when a `HugeResult` fault gives no size: larger than any output a
/// try-on model returns, so a download cap must reject it.
pub const DEFAULT_HUGE_RESULT_BYTES: u64 = 30 * 1024 * 1024;

/// Used when a `ChunkedResult` fault gives no size: several chunks, well
/// under any download cap.
pub const DEFAULT_CHUNKED_RESULT_BYTES: u64 = 1024 * 1024;

/// What a gateway's error page looks like when it is served in place of the image.
const NOT_AN_IMAGE: &str = "<!doctype html>\n<html><head><title>502 Bad Gateway</title></head>\n\
<body><h1>502 Bad Gateway</h1><p>The image could not be served (emulated).</p></body></html>\n";

/// Spoils the file behind `output`'s first image as `mode` says. The URL
/// keeps its shape (and, for a stored output, its value), so nothing in the
/// JSON gives the fault away. `size` is the `HugeResult` or `ChunkedResult`
/// length, 0 for the default.
pub fn spoil(state: &AppState, output: &mut Value, mode: FaultMode, size: u64) {
    let url = output["images"][0]["url"].as_str().unwrap_or_default();
    let files_prefix = format!("{}/files/", state.base_url);
    // An output that points at a sample (compose = false) gets a file of its own.
    let name = url.strip_prefix(&files_prefix).map(String::from).unwrap_or_else(fresh_name);
    match mode {
        FaultMode::NonImageResult => state.files.put(&name, FileBody::Bytes(Bytes::from_static(NOT_AN_IMAGE.as_bytes()))),
        FaultMode::HugeResult => {
            let size = if size == 0 { DEFAULT_HUGE_RESULT_BYTES } else { size };
            state.files.put(&name, FileBody::PaddedPng { size });
        }
        FaultMode::ChunkedResult => {
            let size = if size == 0 { DEFAULT_CHUNKED_RESULT_BYTES } else { size };
            state.files.put(&name, FileBody::ChunkedPaddedPng { size });
        }
        FaultMode::ResultGone => state.files.remove(&name),
        _ => return,
    }
    output["images"][0]["url"] = json!(format!("{files_prefix}{name}"));
}
