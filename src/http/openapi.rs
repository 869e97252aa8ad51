//! `GET /openapi.json`: the API's contract. Hand-written (a generator crate
//! would add ~21 KB gzipped to the worker) and kept true by tests: the
//! router's test compares its paths and methods with the route table, and
//! the end-to-end fuzzer checks every answer against its schemas.

use crate::error::ApiResult;
use worker::Response;

const DOCUMENT: &str = include_str!("../../assets/openapi.json");

pub fn document() -> ApiResult<Response> {
    let mut response = Response::from_bytes(DOCUMENT.as_bytes().to_vec())?;
    let headers = response.headers_mut();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "public, max-age=300")?;
    headers.set("access-control-allow-origin", "*")?;
    Ok(response)
}
