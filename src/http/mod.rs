//! The HTTP layer: `handle` finishes every response (security, limits,
//! timings, CORS headers); `dispatch` enforces each route's declared access
//! and calls its handler with the authenticated principal. One file per
//! resource below: parse → call down → respond.

pub mod admin;
pub mod cors;
pub mod generate;
pub mod generations;
pub mod idempotency;
pub mod input;
pub mod jobs;
pub mod openapi;
pub mod paging;
pub mod rate_limit_headers;
pub mod respond;
pub mod usage;
pub mod webhooks;

use crate::auth::{self, Admit, AdminSession};
use crate::domain::api_key::ApiKey;
use crate::error::{ApiError, ApiResult};
use crate::request::header;
use crate::router::{resolve, Access, Route, RouteError};
use crate::state::Ctx;
use input::GenerationInput;
use rate_limit_headers::rate_limit_headers;
use respond::{error_response, json};
use worker::{Method, Request, Response};

pub async fn handle(mut req: Request, ctx: Ctx) -> Response {
    let path = req.path();
    let is_api = path.starts_with("/api/");
    let origin = header(&req, "origin");
    if is_api && req.method() == Method::Options {
        return cors::preflight(origin.as_deref());
    }
    let result = match resolve(&req.method(), &path) {
        Ok((route, access)) => dispatch(route, access, &mut req, &ctx).await,
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
    if let Some(limits) = ctx.limits() {
        for (name, value) in rate_limit_headers(&limits, ctx.now) {
            let _ = headers.set(name, &value);
        }
    }
    let timings = ctx.timings();
    if !timings.is_empty() {
        let value: Vec<String> = timings.iter().map(|(n, ms)| format!("{n};dur={ms}")).collect();
        let _ = headers.set("server-timing", &value.join(", "));
    }
    if let (true, false, Some(origin)) = (is_api, origin_refused, origin.as_deref()) {
        cors::allow(headers, origin);
    }
    response
}

/// Checks the route's access, then runs its handler with the principal.
async fn dispatch(route: Route, access: Access, req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    match access {
        Access::Public => public(route, ctx),
        Access::SameOrigin => {
            auth::require_same_origin(req)?;
            match route {
                Route::AdminLogin => admin::session::login(req, ctx).await,
                Route::AdminLogout => admin::session::logout(req, ctx).await,
                other => Err(misrouted(&other)),
            }
        }
        Access::Admin => {
            let session = auth::admin_session(req, ctx).await?;
            admin_route(route, req, ctx, &session).await
        }
        Access::AdminWrite => {
            auth::require_same_origin(req)?;
            let session = auth::admin_session(req, ctx).await?;
            admin_route(route, req, ctx, &session).await
        }
        Access::ApiKey => {
            let key = auth::presented_key(req)?;
            client_route(route, req, ctx, key).await
        }
        Access::FalSignature => {
            let delivery = webhooks::verified(req, ctx).await?;
            webhooks::fal(req, ctx, delivery).await
        }
    }
}

fn public(route: Route, ctx: &Ctx) -> ApiResult<Response> {
    match route {
        Route::Health => json(200, &serde_json::json!({ "status": "ok" })),
        Route::OpenApi => openapi::document(),
        Route::AdminPage => admin::dashboard::page(ctx.config.development),
        Route::AdminAsset(name) => admin::dashboard::static_asset(&name, ctx.config.development),
        other => Err(misrouted(&other)),
    }
}

/// Routes of a client's API key. Each obtains its `ApiClient` in the one
/// round trip it needs: generations take their reservation with it, job
/// reads run beside it, history reads are batched with it.
async fn client_route(route: Route, req: &mut Request, ctx: &Ctx, key: ApiKey) -> ApiResult<Response> {
    match route {
        Route::Generate => {
            let input = GenerationInput::read(req, ctx, "gen").await?;
            let reserve = input.reservation(generate::reservation_ttl_ms(ctx));
            match auth::admit(req, ctx, &key, Some(reserve), input.claim.clone()).await? {
                Admit::Client(client) => generate::run(ctx, &client, input).await,
                Admit::Replay(stored) => idempotency::replay(stored),
            }
        }
        Route::CreateJob => {
            let input = GenerationInput::read(req, ctx, "job").await?;
            let reserve = input.reservation(jobs::reservation_ttl_ms(ctx));
            match auth::admit(req, ctx, &key, Some(reserve), input.claim.clone()).await? {
                Admit::Client(client) => jobs::create(req, ctx, &client, input).await,
                Admit::Replay(stored) => idempotency::replay(stored),
            }
        }
        Route::GetJob(id) => {
            let id = jobs::checked_id(&id)?;
            let (client, job) = auth::authenticate_alongside(req, ctx, &key, ctx.timed("store", ctx.jobs.get(id))).await?;
            jobs::show(ctx, &client, job).await
        }
        Route::CancelJob(id) => {
            let id = jobs::checked_id(&id)?;
            let (client, job) = auth::authenticate_alongside(req, ctx, &key, ctx.timed("store", ctx.jobs.get(id))).await?;
            jobs::cancel(ctx, &client, job).await
        }
        Route::Usage => {
            let client = auth::authenticate(req, ctx, &key).await?;
            usage::show(ctx, &client)
        }
        Route::ListGenerations => {
            let page = generations::page_request(req)?;
            let (_, results) = auth::authenticate_read(req, ctx, &key, |client| generations::page_statement(ctx, client, &page)).await?;
            generations::list(page, results)
        }
        other => Err(misrouted(&other)),
    }
}

async fn admin_route(route: Route, req: &mut Request, ctx: &Ctx, session: &AdminSession) -> ApiResult<Response> {
    use admin::{clients, dashboard, metrics, usage};
    match route {
        Route::AdminSession => admin::session::show(session),
        Route::AdminOverview => dashboard::overview(ctx, session).await,
        Route::AdminClientStats(id) => dashboard::client_stats(req, ctx, session, &id).await,
        Route::AdminListClients => clients::list(req, ctx, session).await,
        Route::AdminCreateClient => clients::create(req, ctx, session).await,
        Route::AdminGetClient(id) => clients::show(ctx, session, &id).await,
        Route::AdminUpdateClient(id) => clients::update(req, ctx, session, &id).await,
        Route::AdminRotateKey(id) => clients::rotate_key(req, ctx, session, &id).await,
        Route::AdminRevokeKey { client_id, key_id } => clients::revoke_key(ctx, session, &client_id, &key_id).await,
        Route::AdminRotateWebhookSecret(id) => clients::rotate_webhook_secret(ctx, session, &id).await,
        Route::AdminClientMetrics(id) => metrics::client_metrics(ctx, session, &id).await,
        Route::AdminGenerations => metrics::generations(req, ctx, session).await,
        Route::AdminUsage => usage::month(req, ctx, session).await,
        other => Err(misrouted(&other)),
    }
}

/// The route table gave a route an access its dispatcher does not serve: a
/// programming error, answered as a 500 rather than served unchecked.
fn misrouted(route: &Route) -> ApiError {
    ApiError::Internal(format!("route {route:?} is not served under its declared access"))
}
