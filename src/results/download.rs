//! Reading FAL's output file without copying it into wasm memory (which
//! never shrinks, in a 128 MB isolate): the fetch, a look at its first bytes
//! through one branch of a `tee`, and the other branch handed to the bucket
//! through a `FixedLengthStream` (R2 only takes streams of known length).
//! Only the first dozen bytes ever cross into Rust.

use crate::domain::result_image::SNIFF_BYTES;
use crate::error::ApiError;
use crate::store::results::ResultBucket;
use futures_util::future::{join, select, Either};
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Reflect, Uint8Array};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, ReadableStream, ReadableStreamDefaultReader, TransformStream};
use worker::{AbortSignal, Delay, Fetch, ResponseBody};

/// An answer whose headers have arrived; its body is not read yet.
pub struct Opened {
    pub status: u16,
    pub content_length: Option<u64>,
    pub body: Option<ReadableStream>,
}

fn js_error(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

fn cause(e: ApiError) -> String {
    match e {
        ApiError::Internal(cause) => cause,
        other => other.message(),
    }
}

/// Runs `work`, or gives up after `timeout_ms` (aborting `controller`).
pub async fn within<T>(timeout_ms: u64, controller: &web_sys::AbortController, work: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    match select(Box::pin(work), Delay::from(Duration::from_millis(timeout_ms))).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(format!("no answer within {timeout_ms} ms"))
        }
    }
}

/// `GET url` until its headers arrive; aborting `controller` ends it, and
/// every stream reading its body.
pub async fn open(url: &str, controller: &web_sys::AbortController) -> Result<Opened, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let signal = AbortSignal::from(controller.signal());
    let fetched = Fetch::Url(parsed).send_with_signal(&signal).await.map_err(|e| e.to_string())?;
    let content_length = fetched.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse().ok());
    let body = match fetched.body() {
        ResponseBody::Stream(stream) => Some(stream.clone()),
        _ => None,
    };
    Ok(Opened { status: fetched.status_code(), content_length, body })
}

/// One chunk from a reader: `None` at the end of the stream.
async fn read_chunk(reader: &ReadableStreamDefaultReader) -> Result<Option<Uint8Array>, String> {
    let step = JsFuture::from(reader.read()).await.map_err(js_error)?;
    if Reflect::get(&step, &"done".into()).map_err(js_error)?.is_truthy() {
        return Ok(None);
    }
    let value = Reflect::get(&step, &"value".into()).map_err(js_error)?;
    value.dyn_into::<Uint8Array>().map(Some).map_err(|_| "the body is not a byte stream".to_string())
}

/// Appends up to `SNIFF_BYTES` of `chunk` to `head`.
fn keep_head(head: &mut Vec<u8>, chunk: &Uint8Array) {
    let wanted = SNIFF_BYTES.saturating_sub(head.len()).min(chunk.length() as usize) as u32;
    if wanted > 0 {
        head.extend(chunk.subarray(0, wanted).to_vec());
    }
}

/// Splits `body` in two: the first bytes (read from one branch, which is
/// then dropped) and the untouched other branch, which still holds them.
pub async fn peek(body: ReadableStream) -> Result<(Vec<u8>, ReadableStream), String> {
    let branches = body.tee();
    let (look, rest): (ReadableStream, ReadableStream) = (branches.get(0).unchecked_into(), branches.get(1).unchecked_into());
    let reader: ReadableStreamDefaultReader = look.get_reader().unchecked_into();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    while head.len() < SNIFF_BYTES {
        match read_chunk(&reader).await? {
            Some(chunk) => keep_head(&mut head, &chunk),
            None => break,
        }
    }
    // Only this branch is canceled; the other keeps the whole body.
    let _ = reader.cancel();
    Ok((head, rest))
}

/// A body read to its end into JavaScript memory (for a file served
/// without a `Content-Length`, whose size must be known before it is
/// accepted): its first bytes and its length, or `Err(n)` as soon as more
/// than `cap` bytes (`n` so far) arrived.
pub struct WholeBody {
    pub head: Vec<u8>,
    pub length: u64,
    pub blob: JsValue,
}

pub async fn read_whole(body: ReadableStream, cap: u64) -> Result<Result<WholeBody, u64>, String> {
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let chunks = js_sys::Array::new();
    let (mut head, mut length) = (Vec::with_capacity(SNIFF_BYTES), 0u64);
    while let Some(chunk) = read_chunk(&reader).await? {
        length += u64::from(chunk.length());
        if length > cap {
            let _ = reader.cancel();
            return Ok(Err(length));
        }
        keep_head(&mut head, &chunk);
        chunks.push(&chunk);
    }
    let blob = web_sys::Blob::new_with_u8_array_sequence(&chunks).map_err(js_error)?;
    Ok(Ok(WholeBody { head, length, blob: blob.into() }))
}

/// Streams `rest` (exactly `length` bytes) into the bucket under `key`.
/// A body that ends early, runs long or breaks fails the put: nothing
/// partial is stored.
pub async fn pipe_into(bucket: &ResultBucket, key: &str, rest: ReadableStream, length: u64, content_type: &str) -> Result<(), String> {
    let length = u32::try_from(length).map_err(|_| format!("{length} bytes is too long to stream"))?;
    let fixed = worker::worker_sys::FixedLengthStream::new(length).map_err(js_error)?;
    let fixed: &TransformStream = fixed.unchecked_ref();
    let piped = JsFuture::from(rest.pipe_to(&fixed.writable()));
    let (piped, put) = join(piped, bucket.put_stream(key, fixed.readable(), content_type)).await;
    put.map_err(cause)?;
    piped.map_err(|e| format!("the download broke off: {}", js_error(e)))?;
    Ok(())
}

/// Cancels a stream we will not read (ignoring a stream already closed).
pub fn discard(stream: &ReadableStream) {
    let _ = stream.cancel();
}
