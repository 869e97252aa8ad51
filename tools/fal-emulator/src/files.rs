//! The files the emulator produced, served at `/files/{name}` the way FAL's
//! CDN serves them: with a `Content-Length`, an `ETag`, and 304 when the
//! caller already holds that `ETag`. Clients that cap downloads or cache
//! them rely on both headers, so the emulator leaves `Content-Length` out
//! only when a fault (`ChunkedResult`) asks it to.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{fal_error, AppState};

/// What a stored file holds.
#[derive(Clone)]
pub enum FileBody {
    Bytes(Bytes),
    /// A PNG signature and header padded with zeros to `size` bytes, produced
    /// as it is sent so a 30 MiB answer costs no memory.
    PaddedPng { size: u64 },
    /// The same padded PNG, sent chunked with no `Content-Length`.
    ChunkedPaddedPng { size: u64 },
}

impl FileBody {
    /// The `Content-Length` to declare, if any.
    fn declared_len(&self) -> Option<u64> {
        match self {
            FileBody::Bytes(bytes) => Some(bytes.len() as u64),
            FileBody::PaddedPng { size } => Some(padded_png_len(*size)),
            FileBody::ChunkedPaddedPng { .. } => None,
        }
    }

    fn etag(&self) -> String {
        match self {
            FileBody::Bytes(bytes) => {
                let digest: String = Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("\"{digest}\"")
            }
            FileBody::PaddedPng { size } | FileBody::ChunkedPaddedPng { size } => format!("\"padded-png-{}\"", padded_png_len(*size)),
        }
    }

    fn into_body(self) -> Body {
        match self {
            FileBody::Bytes(bytes) => Body::from(bytes),
            // A stream has no size hint, so hyper sends it chunked unless told a length.
            FileBody::PaddedPng { size } | FileBody::ChunkedPaddedPng { size } => Body::from_stream(padded_png_chunks(size)),
        }
    }
}

#[derive(Default)]
pub struct FileStore(Mutex<HashMap<String, FileBody>>);

impl FileStore {
    /// Stores `body` under a fresh name and returns the name.
    pub fn add(&self, body: FileBody) -> String {
        let name = fresh_name();
        self.put(&name, body);
        name
    }

    /// Stores `body` under `name`, replacing what was there.
    pub fn put(&self, name: &str, body: FileBody) {
        self.0.lock().unwrap().insert(name.to_string(), body);
    }

    pub fn remove(&self, name: &str) {
        self.0.lock().unwrap().remove(name);
    }

    fn get(&self, name: &str) -> Option<FileBody> {
        self.0.lock().unwrap().get(name).cloned()
    }
}

/// A name in the same shape as stored files', for URLs that must 404.
pub fn fresh_name() -> String {
    format!("{:016x}.png", rand::random::<u64>())
}

pub async fn serve(State(state): State<Arc<AppState>>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match state.files.get(&name) {
        Some(body) => cdn_response(body, "image/png", &headers),
        None => fal_error(StatusCode::NOT_FOUND, "File not found".into()),
    }
}

/// A 200 with `Content-Length` (unless the body is chunked), `ETag` and caching headers, or a bodiless 304
/// when the request's `If-None-Match` names the same `ETag`.
pub fn cdn_response(body: FileBody, content_type: &'static str, request: &HeaderMap) -> Response {
    let etag = body.etag();
    let cached = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| {
        tags.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    });
    let common = [(header::ETAG, etag), (header::CACHE_CONTROL, "public, max-age=3600".to_string())];
    if cached {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let mut response = (common, [(header::CONTENT_TYPE, content_type.to_string())]).into_response();
    if let Some(length) = body.declared_len() {
        response.headers_mut().insert(header::CONTENT_LENGTH, length.into());
    }
    *response.body_mut() = body.into_body();
    response
}

/// The PNG signature and an IHDR chunk (4096×4096 RGBA), enough for a client
/// that sniffs the format or the dimensions to take the file for a PNG.
fn png_header() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&4096u32.to_be_bytes());
    ihdr.extend_from_slice(&4096u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    out
}

/// A padded PNG is never shorter than its header.
fn padded_png_len(size: u64) -> u64 {
    size.max(png_header().len() as u64)
}

fn padded_png_chunks(size: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    const CHUNK: usize = 64 * 1024;
    static ZEROS: [u8; CHUNK] = [0; CHUNK];
    let header = Bytes::from(png_header());
    let mut left = padded_png_len(size) - header.len() as u64;
    let padding = std::iter::from_fn(move || {
        let n = left.min(CHUNK as u64) as usize;
        left -= n as u64;
        (n > 0).then(|| Ok(Bytes::from_static(&ZEROS[..n])))
    });
    futures_util::stream::iter(std::iter::once(Ok(header)).chain(padding))
}

/// CRC-32 as PNG chunks use it (the IEEE polynomial, bit by bit: the header
/// is 17 bytes, so a table would buy nothing).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_well_known_iend_checksum() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn a_padded_png_starts_with_a_png_header_and_has_the_asked_length() {
        let header = png_header();
        assert_eq!(header.len(), 33);
        assert_eq!(image::guess_format(&header).unwrap(), image::ImageFormat::Png);
        assert_eq!(padded_png_len(100_000), 100_000);
        assert_eq!(padded_png_len(3), 33, "never shorter than the header");
    }

    #[test]
    fn different_bytes_get_different_etags() {
        let a = FileBody::Bytes(Bytes::from_static(b"a")).etag();
        assert_ne!(a, FileBody::Bytes(Bytes::from_static(b"b")).etag());
        assert!(a.starts_with('"') && a.ends_with('"'));
    }
}
