//! HTTP glue: one file per resource (parse → call → respond), the request
//! context, and the helpers every handler shares.

pub mod admin;
pub mod cors;
pub mod generate;
pub mod generations;
pub mod idempotency;
pub mod jobs;
pub mod usage;
pub mod webhooks;

use crate::config::Config;
use crate::domain::cursor::{page_size, Cursor};
use crate::error::{ApiError, ApiResult};
use crate::limiter::headers::rate_limit_headers;
use crate::limiter::policy::LimitStatus;
use crate::router::{resolve, Route, RouteError};
use serde::Serialize;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use worker::{Context, D1Database, Date, Env, Method, Request, Response};

/// What a handler needs: settings, bindings, the request's clock, and what
/// the response headers will report (limits, timings).
pub struct Ctx {
    pub config: Rc<Config>,
    pub env: Env,
    pub db: D1Database,
    pub wait: Context,
    /// Milliseconds since the epoch for this request (see `Config::test_clock`).
    pub now: u64,
    limits: RefCell<Option<LimitStatus>>,
    timings: RefCell<Vec<(&'static str, u64)>>,
}

impl Ctx {
    pub fn new(config: Rc<Config>, env: Env, db: D1Database, wait: Context, now: u64) -> Self {
        Self { config, env, db, wait, now, limits: RefCell::new(None), timings: RefCell::new(Vec::new()) }
    }

    /// The client's limits after this request's decision, for the headers.
    pub fn set_limits(&self, limits: LimitStatus) {
        *self.limits.borrow_mut() = Some(limits);
    }

    pub fn limits(&self) -> Option<LimitStatus> {
        self.limits.borrow().clone()
    }

    /// Awaits `work`, adding its duration to `Server-Timing` under `name`.
    pub async fn timed<T>(&self, name: &'static str, work: impl Future<Output = T>) -> T {
        let started = Date::now().as_millis();
        let out = work.await;
        let elapsed = Date::now().as_millis().saturating_sub(started);
        let mut timings = self.timings.borrow_mut();
        match timings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += elapsed,
            None => timings.push((name, elapsed)),
        }
        out
    }
}

pub async fn handle(mut req: Request, ctx: Ctx) -> Response {
    let path = req.path();
    let is_api = path.starts_with("/api/");
    let origin = header(&req, "origin");
    if is_api && req.method() == Method::Options {
        return cors::preflight(origin.as_deref());
    }
    let result = match resolve(&req.method(), &path) {
        Ok(route) => dispatch(route, &mut req, &ctx).await,
        Err(RouteError::NotFound) => Err(ApiError::not_found("no such endpoint")),
        Err(RouteError::MethodNotAllowed(allowed)) => Err(ApiError::MethodNotAllowed { allowed }),
    };
    // A refused origin gets no CORS headers, so the browser blocks the page
    // from reading anything; every other API answer is readable by the widget.
    let origin_refused = matches!(&result, Err(e) if e.code() == "origin_not_allowed");
    let mut response = result.unwrap_or_else(error_response);
    let headers = response.headers_mut();
    let _ = headers.set("x-content-type-options", "nosniff");
    if !headers.has("cache-control").unwrap_or(false) {
        let _ = headers.set("cache-control", "no-store");
    }
    if let Some(limits) = ctx.limits.borrow().as_ref() {
        for (name, value) in rate_limit_headers(limits, ctx.now) {
            let _ = headers.set(name, &value);
        }
    }
    let timings = ctx.timings.borrow();
    if !timings.is_empty() {
        let value: Vec<String> = timings.iter().map(|(n, ms)| format!("{n};dur={ms}")).collect();
        let _ = headers.set("server-timing", &value.join(", "));
    }
    if let (true, false, Some(origin)) = (is_api, origin_refused, origin.as_deref()) {
        cors::allow(headers, origin);
    }
    response
}

async fn dispatch(route: Route, req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    use admin::{clients, metrics, session};
    match route {
        Route::Health => json(200, &serde_json::json!({ "status": "ok" })),
        Route::Generate => generate::generate(req, ctx).await,
        Route::ListGenerations => generations::list(req, ctx).await,
        Route::Usage => usage::show(req, ctx).await,
        Route::CreateJob => jobs::create(req, ctx).await,
        Route::GetJob(id) => jobs::show(req, ctx, &id).await,
        Route::CancelJob(id) => jobs::cancel(req, ctx, &id).await,
        Route::FalWebhook => webhooks::fal(req, ctx).await,
        Route::AdminRotateWebhookSecret(id) => admin::clients::rotate_webhook_secret(req, ctx, &id).await,
        Route::AdminUsage => admin::usage::month(req, ctx).await,
        Route::AdminPage => admin::dashboard::page(),
        Route::AdminAsset(name) => admin::dashboard::static_asset(&name),
        Route::AdminOverview => admin::dashboard::overview(req, ctx).await,
        Route::AdminClientStats(id) => admin::dashboard::client_stats(req, ctx, &id).await,
        Route::AdminLogin => session::login(req, ctx).await,
        Route::AdminLogout => session::logout(req, ctx).await,
        Route::AdminSession => session::show(req, ctx).await,
        Route::AdminListClients => clients::list(req, ctx).await,
        Route::AdminCreateClient => clients::create(req, ctx).await,
        Route::AdminGetClient(id) => clients::show(req, ctx, &id).await,
        Route::AdminUpdateClient(id) => clients::update(req, ctx, &id).await,
        Route::AdminRotateKey(id) => clients::rotate_key(req, ctx, &id).await,
        Route::AdminRevokeKey { client_id, key_id } => clients::revoke_key(req, ctx, &client_id, &key_id).await,
        Route::AdminClientMetrics(id) => metrics::client_metrics(req, ctx, &id).await,
        Route::AdminGenerations => metrics::generations(req, ctx).await,
    }
}

pub fn json<T: Serialize>(status: u16, value: &T) -> ApiResult<Response> {
    let mut response = Response::from_json(value)?.with_status(status);
    response.headers_mut().set("content-type", "application/json; charset=utf-8")?;
    Ok(response)
}

/// A response from JSON already serialised (kept for idempotent replays).
pub fn json_text(status: u16, body: String) -> ApiResult<Response> {
    let mut response = Response::from_bytes(body.into_bytes())?.with_status(status);
    response.headers_mut().set("content-type", "application/json; charset=utf-8")?;
    Ok(response)
}

pub fn error_response(error: ApiError) -> Response {
    if let Some(line) = error.log_line() {
        worker::console_error!("{line}");
    }
    let mut response = match json(error.status(), &error.body()) {
        Ok(r) => r,
        Err(_) => return Response::error("internal error", 500).expect("a 500 response can be built"),
    };
    let headers = response.headers_mut();
    match &error {
        ApiError::MethodNotAllowed { allowed } => {
            let _ = headers.set("allow", &allowed.join(", "));
        }
        ApiError::TooManyRequests { retry_after_s, .. } => {
            let _ = headers.set("retry-after", &retry_after_s.to_string());
        }
        _ => {}
    }
    response
}

/// Reads a JSON body, refusing other media types (415) and bodies over the cap
/// (413) before parsing anything.
pub async fn read_json_body(req: &mut Request, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let content_type = header(req, "content-type").unwrap_or_default().to_ascii_lowercase();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    read_body(req, max_bytes).await
}

/// Reads a body of any type, refusing one over the cap (413): by its
/// declared length before reading, and by its real length after.
pub async fn read_body(req: &mut Request, max_bytes: usize) -> ApiResult<Vec<u8>> {
    let declared: Option<usize> = header(req, "content-length").and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > max_bytes) {
        return Err(ApiError::PayloadTooLarge { limit_bytes: max_bytes });
    }
    let body = req.bytes().await.map_err(|e| ApiError::bad_request("unreadable_body", e.to_string()))?;
    if body.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge { limit_bytes: max_bytes });
    }
    Ok(body)
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Query parameters as (name, value) pairs.
pub fn query_pairs(req: &Request) -> ApiResult<Vec<(String, String)>> {
    let url = req.url()?;
    Ok(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `limit` and `cursor` from the query string.
pub fn page_params(query: &[(String, String)]) -> ApiResult<(u32, Option<Cursor>)> {
    let limit = page_size(query_value(query, "limit"))
        .ok_or_else(|| ApiError::bad_request("invalid_query", "`limit` must be a whole number from 1 to 100"))?;
    let after = match query_value(query, "cursor") {
        None | Some("") => None,
        Some(raw) => Some(
            Cursor::decode(raw)
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned"))?,
        ),
    };
    Ok((limit, after))
}

/// Lists ask storage for `limit + 1` rows to learn whether another page exists;
/// this keeps `limit` of them and the cursor to the next page, if any.
pub fn split_page<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> (Vec<T>, Option<String>) {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if has_more { rows.last().map(|r| cursor_of(r).encode()) } else { None };
    (rows, next)
}
