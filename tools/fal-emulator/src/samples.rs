//! Inputs to try, at `GET /samples/{name}`: a person (PNG, and JPEG for
//! browser upload tests) and three garments, so a demo shop page can show
//! three distinct products.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::OnceLock;

use crate::files::{cdn_response, FileBody};
use crate::{fal_error, images};

/// Draws and encodes one sample.
type Encode = fn() -> Vec<u8>;

/// Each sample's name and how to make it.
const SAMPLES: [(&str, Encode); 5] = [
    ("person.png", || images::encode_png(&images::sample_person())),
    ("person.jpg", || images::encode_jpeg(&images::sample_person())),
    ("garment.png", || images::encode_png(&images::sample_garment())),
    ("garment-2.png", || images::encode_png(&images::sample_blue_trousers())),
    ("garment-3.png", || images::encode_png(&images::sample_green_dress())),
];

pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match sample(&name) {
        Some((bytes, content_type)) => cdn_response(FileBody::Bytes(bytes), content_type, &headers),
        None => fal_error(StatusCode::NOT_FOUND, "no such sample".into()),
    }
}

/// The sample's bytes and content type. Each is encoded once: with
/// `compose = false` every output points at `person.png`, and a benchmark
/// should not measure the PNG encoder.
pub fn sample(name: &str) -> Option<(Bytes, &'static str)> {
    static CACHE: [OnceLock<Bytes>; SAMPLES.len()] = [const { OnceLock::new() }; SAMPLES.len()];
    let index = SAMPLES.iter().position(|(n, _)| *n == name)?;
    let bytes = CACHE[index].get_or_init(|| Bytes::from(SAMPLES[index].1()));
    let content_type = if name.ends_with(".jpg") { "image/jpeg" } else { "image/png" };
    Some((bytes.clone(), content_type))
}
