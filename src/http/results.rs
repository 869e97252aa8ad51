//! `GET /v1/results/{generation_id}?client=…&exp=…&kid=…&sig=…`: a
//! generation's image, from our bucket. The URL is the credential: dispatch
//! checks its signature and expiry (`verified`) before anything is read,
//! and a stored image is served without a D1 read. Only when the bucket has
//! no object does D1 say why: still being copied (a redirect to FAL's copy),
//! deleted (410), or unknown (404).

use crate::domain::generation::Outcome;
use crate::domain::result::{object_key, ResultStatus};
use crate::domain::result_image::ImageKind;
use crate::domain::result_url::{cache_max_age_s, etags_in, verify, ResultRef, UrlRefusal};
use crate::error::{ApiError, ApiResult};
use crate::request::{header, query_pairs};
use crate::state::Ctx;
use crate::store::result_rows::record_of;
use crate::store::results::Fetched;
use worker::{Object, Request, Response};

/// The access check of the route: a genuine, unexpired URL.
pub fn verified(req: &Request, ctx: &Ctx, generation_id: &str) -> ApiResult<ResultRef> {
    // Without keys we never minted a URL; whatever this is, it names nothing.
    let keys = ctx.config.signing_keys.as_deref().ok_or_else(no_such_result)?;
    verify(keys, generation_id, &query_pairs(req)?, ctx.now).map_err(|refusal| match refusal {
        UrlRefusal::Invalid => ApiError::forbidden("invalid_result_url", "this image URL is not valid (its signature does not match)"),
        UrlRefusal::Expired => ApiError::forbidden("result_url_expired", "this image URL has expired; read the generation again for a fresh one"),
    })
}

pub async fn serve(req: &Request, ctx: &Ctx, image: ResultRef) -> ApiResult<Response> {
    let key = object_key(image.client_id.as_str(), &image.generation_id);
    let held = header(req, "if-none-match").map(|h| etags_in(&h)).unwrap_or_default();
    let ask_unless = held.iter().find(|t| *t != "*").cloned();
    let max_age = cache_max_age_s(image.expires_s, ctx.now);
    match ctx.timed("r2", ctx.results.get(&key, ask_unless)).await? {
        Fetched::NotModified(object) => not_modified(&object, max_age),
        Fetched::Found(object) if held.iter().any(|t| t == "*" || *t == object.etag()) => not_modified(&object, max_age),
        Fetched::Found(object) => found(object, &image, max_age),
        Fetched::Missing => not_stored(ctx, &image).await,
    }
}

fn found(object: Object, image: &ResultRef, max_age: u64) -> ApiResult<Response> {
    let content_type = object.http_metadata().content_type.unwrap_or_else(|| "application/octet-stream".into());
    let extension = ImageKind::from_content_type(&content_type).map_or("bin", ImageKind::extension);
    let (size, etag) = (object.size(), object.http_etag());
    let body = object.body().ok_or_else(|| ApiError::Internal("R2 returned an object without its body".into()))?;
    // The runtime streams the object to the client: no byte passes through wasm.
    let mut response = Response::from_body(body.response_body()?)?;
    let headers = response.headers_mut();
    headers.set("content-type", &content_type)?;
    headers.set("content-length", &size.to_string())?;
    headers.set("content-disposition", &format!("inline; filename=\"{}.{extension}\"", image.generation_id))?;
    cache_headers(headers, &etag, max_age)?;
    Ok(response)
}

fn not_modified(object: &Object, max_age: u64) -> ApiResult<Response> {
    let mut response = Response::empty()?.with_status(304);
    cache_headers(response.headers_mut(), &object.http_etag(), max_age)?;
    Ok(response)
}

/// The image never changes, but the URL expires: browsers keep it no longer
/// than that, privately (the URL is a credential). Pages on other origins
/// may show it.
fn cache_headers(headers: &mut worker::Headers, etag: &str, max_age: u64) -> ApiResult<()> {
    headers.set("etag", etag)?;
    headers.set("cache-control", &format!("private, max-age={max_age}"))?;
    headers.set("cross-origin-resource-policy", "cross-origin")?;
    headers.set("access-control-allow-origin", "*")?;
    Ok(())
}

/// No object: the row says whether it is coming, gone, or never was.
async fn not_stored(ctx: &Ctx, image: &ResultRef) -> ApiResult<Response> {
    let record = ctx.timed("store", record_of(&ctx.db, &image.client_id, &image.generation_id)).await?;
    let Some(record) = record.filter(|r| r.status == Outcome::Success) else { return Err(no_such_result()) };
    match record.result_status {
        // Being copied (or retried), or from before we kept copies: FAL's copy, while it lives.
        None | Some(ResultStatus::Pending) => {
            let fal = record.image_url.as_deref().and_then(|u| url::Url::parse(u).ok()).filter(|u| matches!(u.scheme(), "https" | "http"));
            let fal = fal.ok_or_else(no_such_result)?;
            Ok(Response::redirect_with_status(fal, 302)?)
        }
        Some(ResultStatus::Failed) => Err(ApiError::Gone {
            code: "result_unavailable",
            message: "the image could not be copied before the image service deleted it".into(),
        }),
        Some(ResultStatus::Deleted) | Some(ResultStatus::Stored) => Err(ApiError::Gone {
            code: "result_expired",
            message: "the image was deleted at the end of its retention period".into(),
        }),
    }
}

fn no_such_result() -> ApiError {
    ApiError::not_found("no such result")
}
