//! Capturing a generation's output: before a generation counts as a success
//! its image is checked (size by `Content-Length`, type by its first bytes)
//! and the copy into our bucket is started; the copy finishes after the
//! answer (`waitUntil`). A file that cannot be read now leaves the
//! generation a success, marked `pending`: the cron retries while FAL keeps
//! its copy, and our URL redirects to FAL's meanwhile.

use super::download::{self, discard, pipe_into, read_whole};
use crate::domain::result::{object_key, ResultStatus};
use crate::domain::result_image::{check_head, check_size, ImageKind, Refusal};
use crate::store::result_rows::{mark_stored, note_copy_failure, record_of};
use crate::store::results::ResultBucket;
use base64::Engine;
use wasm_bindgen::JsValue;
use worker::js_sys::Uint8Array;
use worker::web_sys::{AbortController, ReadableStream};
use worker::D1Database;

/// Until FAL's file answers and its first bytes arrive: the time the
/// synchronous answer may wait on the check.
const OPEN_TIMEOUT_MS: u64 = 15_000;
/// For the rest of the copy, after the answer. Within `waitUntil`'s grace;
/// a copy cut short stays `pending` and the cron retries it.
const COPY_TIMEOUT_MS: u64 = 25_000;

/// How the look at FAL's file went.
pub enum Capture {
    /// An image within the cap; its copy is ready to run.
    Started(PendingCopy),
    /// Not something we keep: the generation is an error.
    Refused(Refusal),
    /// Could not be read now (gone, unreachable, slow): to be retried.
    Unreachable(String),
}

/// A checked image on its way to the bucket.
pub struct PendingCopy {
    pub kind: ImageKind,
    pub bytes: u64,
    source: Source,
}

enum Source {
    /// The rest of the download, exactly `bytes` long.
    Stream { rest: ReadableStream, controller: AbortController },
    /// Already whole in JavaScript memory (a `Blob` or bytes).
    Whole(JsValue),
}

/// What the generation row records of our copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub status: Option<ResultStatus>,
    pub content_type: Option<String>,
    pub bytes: Option<u64>,
    pub error: Option<String>,
}

impl Capture {
    /// The row's result columns for a successful generation.
    pub fn kept(&self) -> Kept {
        match self {
            Capture::Started(copy) => Kept {
                status: Some(ResultStatus::Pending),
                content_type: Some(copy.kind.content_type().to_string()),
                bytes: Some(copy.bytes),
                error: None,
            },
            Capture::Unreachable(reason) => Kept { status: Some(ResultStatus::Pending), error: Some(reason.clone()), ..Kept::default() },
            // The generation itself is an error, and its `error` says why.
            Capture::Refused(_) => Kept::default(),
        }
    }

    /// Lets go of the download (the generation was recorded by someone else).
    pub fn abandon(self) {
        if let Capture::Started(copy) = self {
            copy.abandon();
        }
    }
}

/// Looks at FAL's file at `url`: is it an image, within `cap` bytes? Its
/// headers and first bytes must arrive within `OPEN_TIMEOUT_MS` in all.
pub async fn capture(url: &str, cap: u64) -> Capture {
    if let Some(data) = url.strip_prefix("data:") {
        return capture_data_uri(data, cap);
    }
    let controller = match AbortController::new() {
        Ok(controller) => controller,
        Err(e) => return Capture::Unreachable(format!("could not start the download: {e:?}")),
    };
    let looked = download::within(OPEN_TIMEOUT_MS, &controller, async { Ok(look(url, cap, &controller).await) }).await;
    let capture = looked.unwrap_or_else(|reason| Capture::Unreachable(format!("FAL's file did not arrive: {reason}")));
    if !matches!(capture, Capture::Started(_)) {
        // Nothing more will be read: end the download.
        controller.abort();
    }
    capture
}

async fn look(url: &str, cap: u64, controller: &AbortController) -> Capture {
    let opened = match download::open(url, controller).await {
        Ok(opened) => opened,
        Err(reason) => return Capture::Unreachable(format!("could not download FAL's file: {reason}")),
    };
    if !(200..300).contains(&opened.status) {
        return Capture::Unreachable(format!("FAL's file answered HTTP {}", opened.status));
    }
    let Some(body) = opened.body else { return Capture::Refused(Refusal::NotAnImage) };
    match opened.content_length {
        Some(length) => {
            if let Err(refusal) = check_size(length, cap) {
                return Capture::Refused(refusal);
            }
            let (head, rest) = match download::peek(body).await {
                Ok(peeked) => peeked,
                Err(reason) => return Capture::Unreachable(format!("FAL's file broke off: {reason}")),
            };
            match check_head(&head) {
                Ok(kind) => Capture::Started(PendingCopy { kind, bytes: length, source: Source::Stream { rest, controller: controller.clone() } }),
                Err(refusal) => Capture::Refused(refusal),
            }
        }
        // No declared length: the size is only known once it has all arrived.
        None => match read_whole(body, cap).await {
            Ok(Ok(whole)) => match check_head(&whole.head) {
                Ok(kind) => Capture::Started(PendingCopy { kind, bytes: whole.length, source: Source::Whole(whole.blob) }),
                Err(refusal) => Capture::Refused(refusal),
            },
            Ok(Err(read)) => Capture::Refused(Refusal::TooLarge { bytes: read, cap }),
            Err(reason) => Capture::Unreachable(format!("FAL's file broke off: {reason}")),
        },
    }
}

/// FAL may answer with the image inline (`data:image/png;base64,…`).
fn capture_data_uri(data: &str, cap: u64) -> Capture {
    let Some((_, payload)) = data.split_once(";base64,") else { return Capture::Refused(Refusal::NotAnImage) };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(payload.trim()) else {
        return Capture::Refused(Refusal::NotAnImage);
    };
    if let Err(refusal) = check_size(bytes.len() as u64, cap) {
        return Capture::Refused(refusal);
    }
    match check_head(&bytes) {
        Ok(kind) => {
            let copy = Uint8Array::from(bytes.as_slice());
            Capture::Started(PendingCopy { kind, bytes: bytes.len() as u64, source: Source::Whole(copy.into()) })
        }
        Err(refusal) => Capture::Refused(refusal),
    }
}

impl PendingCopy {
    /// Puts the image in the bucket under `key`.
    pub async fn store(self, bucket: &ResultBucket, key: &str) -> Result<(), String> {
        let content_type = self.kind.content_type();
        match self.source {
            Source::Stream { rest, controller } => {
                let copied = download::within(COPY_TIMEOUT_MS, &controller, pipe_into(bucket, key, rest, self.bytes, content_type)).await;
                copied.map_err(|reason| format!("copying FAL's file failed: {reason}"))
            }
            Source::Whole(value) => bucket.put_js(key, &value, content_type).await.map_err(|e| format!("storing the image failed: {e:?}")),
        }
    }

    pub fn abandon(self) {
        if let Source::Stream { rest, controller } = self.source {
            discard(&rest);
            controller.abort();
        }
    }
}

/// Runs a copy to its end and notes the result on the row: `stored`, or
/// still `pending` with the error (the cron retries). Returns whether the
/// image is now in the bucket.
pub async fn store_and_note(db: &D1Database, bucket: &ResultBucket, copy: PendingCopy, client_id: &str, generation_id: &str) -> bool {
    let key = object_key(client_id, generation_id);
    if let Err(reason) = copy.store(bucket, &key).await {
        worker::console_warn!("result {generation_id}: {reason}; the cron will retry");
        if let Err(e) = note_copy_failure(db, client_id, generation_id, &reason, ResultStatus::Pending).await {
            worker::console_error!("result {generation_id}: noting the failed copy failed: {e:?}");
        }
        return false;
    }
    match mark_stored(db, client_id, generation_id).await {
        Ok(true) => {}
        // Not waiting for a copy: if its image was deleted meanwhile
        // (retention, erasure), this copy must not outlive it. A row not
        // recorded at all (D1 down) may still be replayed: keep the image.
        Ok(false) => {
            let deleted = matches!(record_of_id(db, client_id, generation_id).await, Some(Some(ResultStatus::Deleted)));
            if deleted {
                let _ = bucket.delete(vec![key]).await;
                return false;
            }
        }
        Err(e) => worker::console_error!("result {generation_id}: stored, but marking the row failed (the cron will copy it again): {e:?}"),
    }
    true
}

async fn record_of_id(db: &D1Database, client_id: &str, generation_id: &str) -> Option<Option<ResultStatus>> {
    let client = crate::domain::ids::ClientId::parse(client_id)?;
    record_of(db, &client, generation_id).await.ok().flatten().map(|r| r.result_status)
}
