//! `POST /admin/login`, `POST /admin/logout`, `GET /admin/session`.

use crate::auth::AdminSession;
use crate::domain::input::parse_json;
use crate::domain::session::{clear_cookie, token_from_cookie_header, SessionToken, ABSOLUTE_LIFETIME_MS};
use crate::domain::time::to_rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::http::respond::json;
use crate::request::{header, read_json_body};
use crate::state::Ctx;
use crate::store::sessions;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use super::login_attempt::LoginAttempt;
use worker::{Request, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    password: String,
}

pub async fn login(req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    let expected = ctx.config.admin_password_digest.ok_or_else(|| ApiError::Unavailable {
        message: "admin login is disabled: ADMIN_PASSWORD is not set".into(),
    })?;
    let body = read_json_body(req, 4096).await?;
    let login: Login = parse_json(&body)?;
    // The attempt counts before the password is compared, so parallel
    // guesses cannot all pass one check; a success gives it back.
    let attempt = LoginAttempt::take(req, ctx).await?;
    // Comparing fixed-size digests in constant time reveals neither the
    // password's length nor how much of a guess was right.
    let given: [u8; 32] = Sha256::digest(login.password.as_bytes()).into();
    if !bool::from(given.ct_eq(&expected)) {
        attempt.failed().await?;
        return Err(ApiError::unauthenticated("invalid_credentials", "wrong password"));
    }
    attempt.give_back().await?;
    let token = SessionToken::generate();
    let expires_at = ctx.now + ABSOLUTE_LIFETIME_MS;
    sessions::create(&ctx.db, &token.storage_key(&expected), ctx.now, expires_at).await?;
    let mut response = json(200, &json!({ "authenticated": true, "expires_at": to_rfc3339(expires_at) }))?;
    response.headers_mut().set("set-cookie", &token.set_cookie(ABSOLUTE_LIFETIME_MS))?;
    Ok(response)
}

pub async fn logout(req: &Request, ctx: &Ctx) -> ApiResult<Response> {
    let token = header(req, "cookie")
        .as_deref()
        .and_then(token_from_cookie_header)
        .and_then(SessionToken::parse);
    if let (Some(token), Some(digest)) = (token, ctx.config.admin_password_digest) {
        sessions::delete(&ctx.db, &token.storage_key(&digest)).await?;
    }
    let mut response = json(200, &json!({ "authenticated": false }))?;
    response.headers_mut().set("set-cookie", &clear_cookie())?;
    Ok(response)
}

pub fn show(session: &AdminSession) -> ApiResult<Response> {
    json(
        200,
        &json!({
            "authenticated": true,
            "expires_at": to_rfc3339(session.expires_at),
            "idle_expires_at": to_rfc3339(session.idle_expires_at),
        }),
    )
}
