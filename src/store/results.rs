//! The result bucket (R2): generations' output images, under the keys of
//! `domain::result`. Image bytes only ever pass between JavaScript objects
//! here (streams, blobs); none is copied into wasm memory, which never
//! shrinks once grown and shares the isolate's 128 MB.

use crate::error::{ApiError, ApiResult};
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{Bucket, Conditional, Data, HttpMetadata, Object};

/// What a read found.
pub enum Fetched {
    /// The object, with its body.
    Found(Object),
    /// The object's entity tag is one the reader already holds (no body).
    NotModified(Object),
    Missing,
}

#[derive(Clone)]
pub struct ResultBucket {
    bucket: Bucket,
}

fn r2_error(what: &str, e: impl std::fmt::Debug) -> ApiError {
    ApiError::Internal(format!("R2 {what}: {e:?}"))
}

impl ResultBucket {
    pub fn new(bucket: Bucket) -> Self {
        Self { bucket }
    }

    /// Stores a stream of known length (R2 refuses others: "Provided
    /// readable stream must have a known length").
    pub async fn put_stream(&self, key: &str, stream: worker::web_sys::ReadableStream, content_type: &str) -> ApiResult<()> {
        let metadata = HttpMetadata { content_type: Some(content_type.to_string()), ..HttpMetadata::default() };
        self.bucket
            .put(key, Data::ReadableStream(stream))
            .http_metadata(metadata)
            .execute()
            .await
            .map_err(|e| r2_error("put", e))?;
        Ok(())
    }

    /// Stores a JavaScript value R2 takes as it is (a `Blob`, an
    /// `ArrayBuffer` view) through the raw binding: `worker::Data` would
    /// copy it through wasm first.
    pub async fn put_js(&self, key: &str, value: &JsValue, content_type: &str) -> ApiResult<()> {
        let raw: &worker::worker_sys::R2Bucket = AsRef::<JsValue>::as_ref(&self.bucket).unchecked_ref();
        let metadata = js_sys::Object::new();
        js_sys::Reflect::set(&metadata, &"contentType".into(), &content_type.into()).map_err(|e| r2_error("put", e))?;
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"httpMetadata".into(), &metadata).map_err(|e| r2_error("put", e))?;
        let promise = raw.put(key.to_string(), value.clone(), options.into()).map_err(|e| r2_error("put", e))?;
        JsFuture::from(promise).await.map_err(|e| r2_error("put", e))?;
        Ok(())
    }

    /// Reads an object; with `unless_etag`, R2 leaves the body out when the
    /// object still has that entity tag.
    pub async fn get(&self, key: &str, unless_etag: Option<String>) -> ApiResult<Fetched> {
        let mut get = self.bucket.get(key);
        if let Some(etag) = unless_etag {
            get = get.only_if(Conditional { etag_does_not_match: Some(etag), ..Conditional::default() });
        }
        Ok(match get.execute().await.map_err(|e| r2_error("get", e))? {
            None => Fetched::Missing,
            Some(object) if object.body().is_some() => Fetched::Found(object),
            Some(object) => Fetched::NotModified(object),
        })
    }

    /// Deletes up to 1,000 keys in one call (R2's limit per call).
    pub async fn delete(&self, keys: Vec<String>) -> ApiResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.bucket.delete_multiple(keys).await.map_err(|e| r2_error("delete", e))
    }

    /// Up to `limit` (≤ 1,000) keys under `prefix`, from the start.
    pub async fn keys_under(&self, prefix: &str, limit: u32) -> ApiResult<Vec<String>> {
        let listed = self.bucket.list().prefix(prefix).limit(limit).execute().await.map_err(|e| r2_error("list", e))?;
        Ok(listed.objects().iter().map(Object::key).collect())
    }
}
