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
use crate::limiter::client::LoginLimiter;
use crate::limiter::protocol::LoginRequest;
use futures_util::future::join;
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
    let throttle = LoginThrottle::new(req, ctx)?;
    throttle.check().await?;
    // Comparing fixed-size digests in constant time reveals neither the
    // password's length nor how much of a guess was right.
    let given: [u8; 32] = Sha256::digest(login.password.as_bytes()).into();
    if !bool::from(given.ct_eq(&expected)) {
        throttle.record_failure().await?;
        return Err(ApiError::unauthenticated("invalid_credentials", "wrong password"));
    }
    let token = SessionToken::generate();
    let expires_at = ctx.now + ABSOLUTE_LIFETIME_MS;
    sessions::create(&ctx.db, &token.hash(), ctx.now, expires_at).await?;
    let mut response = json(200, &json!({ "authenticated": true, "expires_at": to_rfc3339(expires_at) }))?;
    response.headers_mut().set("set-cookie", &token.set_cookie(ABSOLUTE_LIFETIME_MS))?;
    Ok(response)
}

pub async fn logout(req: &Request, ctx: &Ctx) -> ApiResult<Response> {
    let token = header(req, "cookie")
        .as_deref()
        .and_then(token_from_cookie_header)
        .and_then(SessionToken::parse);
    if let Some(token) = token {
        sessions::delete(&ctx.db, &token.hash()).await?;
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

/// Failed logins are counted per source IP and across all sources (a limiter
/// object each), so the password cannot be brute-forced from one address or many.
struct LoginThrottle {
    limiter: LoginLimiter,
    ip: String,
    now: u64,
}

const LOGIN_WINDOW_MS: u64 = 15 * 60 * 1000;
const MAX_FAILURES_PER_IP: usize = 10;
const MAX_FAILURES_OVERALL: usize = 100;

impl LoginThrottle {
    fn new(req: &Request, ctx: &Ctx) -> ApiResult<Self> {
        let ip = header(req, "cf-connecting-ip").unwrap_or_else(|| "unknown".into());
        Ok(Self { limiter: ctx.login.clone(), ip, now: ctx.now })
    }

    fn request(&self, max_failures: usize, record_failure: bool) -> LoginRequest {
        LoginRequest { now: self.now, window_ms: LOGIN_WINDOW_MS, max_failures, record_failure }
    }

    async fn check(&self) -> ApiResult<()> {
        let (per_ip, overall) = join(
            self.limiter.login(&self.ip, &self.request(MAX_FAILURES_PER_IP, false)),
            self.limiter.login("*", &self.request(MAX_FAILURES_OVERALL, false)),
        )
        .await;
        let (per_ip, overall) = (per_ip?, overall?);
        if per_ip.allowed && overall.allowed {
            return Ok(());
        }
        Err(ApiError::TooManyRequests {
            code: "too_many_login_attempts",
            message: "too many failed logins; wait before trying again".into(),
            retry_after_s: per_ip.retry_after_s.max(overall.retry_after_s),
        })
    }

    async fn record_failure(&self) -> ApiResult<()> {
        let (a, b) = join(
            self.limiter.login(&self.ip, &self.request(MAX_FAILURES_PER_IP, true)),
            self.limiter.login("*", &self.request(MAX_FAILURES_OVERALL, true)),
        )
        .await;
        a?;
        b?;
        Ok(())
    }
}
