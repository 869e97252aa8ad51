//! The widget a shop embeds (`GET /widget.js`), and widget session tokens
//! (`POST /api/widget-sessions`), which a shop's back end mints for one
//! shopper on one of its pages — the recommended credential for shops with a
//! back end: unlike a publishable key, a token names a shopper the shop
//! vouches for, and stops working within the hour.

use super::respond::json;
use crate::auth::ApiClient;
use crate::domain::api_key::hex_sha256;
use crate::domain::client::normalize_origins;
use crate::domain::ids::random_base62;
use crate::domain::input::parse_json;
use crate::domain::shopper::{ShopperId, ANONYMOUS_PREFIX};
use crate::domain::time::to_rfc3339;
use crate::domain::widget_token::{WidgetToken, DEFAULT_TTL_S, MAX_TTL_S};
use crate::error::{ApiError, ApiResult};
use crate::request::{header, read_json_body};
use crate::state::Ctx;
use serde::Deserialize;
use serde_json::json;
use std::cell::OnceCell;
use worker::{Request, Response};

const SCRIPT: &str = include_str!("../../assets/widget/widget.js");

thread_local! {
    static SCRIPT_ETAG: OnceCell<String> = const { OnceCell::new() };
}

/// The script, with an ETag of its content: shops embed one stable URL, so a
/// short max-age plus revalidation brings a new version within the hour.
pub fn script(req: &Request) -> ApiResult<Response> {
    let etag = SCRIPT_ETAG.with(|e| e.get_or_init(|| format!("\"{}\"", hex_sha256(SCRIPT.as_bytes()).get(..16).unwrap_or_default())).clone());
    let mut response = if header(req, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag)) {
        Response::empty()?.with_status(304)
    } else {
        Response::from_bytes(SCRIPT.as_bytes().to_vec())?
    };
    let headers = response.headers_mut();
    headers.set("content-type", "text/javascript; charset=utf-8")?;
    headers.set("cache-control", "public, max-age=3600, stale-while-revalidate=86400")?;
    headers.set("etag", &etag)?;
    headers.set("access-control-allow-origin", "*")?;
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    origin: String,
    shopper_id: Option<String>,
    ttl_seconds: Option<u64>,
}

pub struct SessionRequest {
    origin: String,
    shopper: Option<ShopperId>,
    ttl_s: u64,
}

impl SessionRequest {
    pub async fn read(req: &mut Request) -> ApiResult<Self> {
        let body = read_json_body(req, 4096).await?;
        let raw: RawSession = parse_json(&body)?;
        let origin = normalize_origins(&[raw.origin])?.into_iter().next().unwrap_or_default();
        if origin.contains('*') {
            return Err(ApiError::invalid("invalid_origin", "`origin` must be one page origin, without wildcards"));
        }
        let ttl_s = raw.ttl_seconds.unwrap_or(DEFAULT_TTL_S);
        if !(60..=MAX_TTL_S).contains(&ttl_s) {
            return Err(ApiError::invalid("invalid_ttl", format!("`ttl_seconds` must be 60 to {MAX_TTL_S}")));
        }
        let shopper = raw.shopper_id.as_deref().map(ShopperId::parse).transpose()?;
        Ok(Self { origin, shopper, ttl_s })
    }
}

/// Mints a token for `request.origin` (one of the client's allowed origins)
/// and its shopper (a fresh anonymous one when the shop names none).
pub async fn create_session(ctx: &Ctx, client: &ApiClient, request: SessionRequest) -> ApiResult<Response> {
    let keys = ctx.config.signing_keys.as_ref().ok_or_else(|| ApiError::Unavailable {
        message: "widget session tokens are not configured (SIGNING_KEYS is not set)".into(),
    })?;
    if !crate::domain::client::origin_allowed(&client.allowed_origins, &request.origin) {
        return Err(ApiError::forbidden("origin_not_allowed", "`origin` is not one of the client's allowed origins"));
    }
    let shopper = match request.shopper {
        Some(s) => s,
        None => ShopperId::anonymous(&format!("{ANONYMOUS_PREFIX}{}", random_base62(22)))
            .ok_or_else(|| ApiError::Internal("a fresh anonymous id did not parse".into()))?,
    };
    let token = WidgetToken { client_id: client.id.clone(), origin: request.origin, shopper_id: shopper, expires_at: ctx.now + request.ttl_s * 1000 };
    json(
        201,
        &json!({
            "token": token.sign(keys),
            "expires_at": to_rfc3339(token.expires_at),
            "shopper_id": token.shopper_id,
            "origin": token.origin,
        }),
    )
}
