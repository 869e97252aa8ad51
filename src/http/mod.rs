//! The HTTP layer: `handle` finishes every response (security, limits,
//! timings, CORS headers); `dispatch` enforces each route's declared access
//! and calls its handler with the authenticated principal. One file per
//! resource below: parse → call down → respond.

pub mod admin;
pub mod cors;
pub mod diagnostics;
pub mod deliveries;
pub mod generate;
pub mod generations;
pub mod idempotency;
pub mod input;
pub mod jobs;
pub mod openapi;
pub mod paging;
pub mod rate_limit_headers;
pub mod respond;
pub mod shoppers;
pub mod results;
pub mod usage;
pub mod webhooks;
pub mod widget;

use crate::auth::{self, Admit, AdminSession, Credential};
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
    // Read only where it matters: CORS is for the API's paths.
    let origin = if is_api { header(&req, "origin") } else { None };
    // Only needed for our own links when PUBLIC_BASE_URL is unset; parsing the URL is not free.
    if ctx.config.public_base_url.is_none() {
        if let Ok(url) = req.url() {
            ctx.set_origin(url.origin().ascii_serialization());
        }
    }
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
    if ctx.config.development {
        if let Some(bytes) = diagnostics::wasm_memory_bytes() {
            let _ = headers.set(diagnostics::WASM_MEMORY_HEADER, &bytes.to_string());
        }
    }
    response
}

/// Checks the route's access, then runs its handler with the principal.
async fn dispatch(route: Route, access: Access, req: &mut Request, ctx: &Ctx) -> ApiResult<Response> {
    match access {
        Access::Public => public(route, req, ctx),
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
        Access::SecretKey | Access::ClientKey | Access::ShopperKey => {
            let credential = auth::presented(req, ctx)?;
            match access {
                Access::SecretKey => {
                    credential.secret()?;
                }
                Access::ShopperKey if credential.shopper().is_none() => {
                    return Err(ApiError::forbidden(
                        "widget_credential_required",
                        "this endpoint is the widget's (a publishable key or a widget session token); a shop's server reads a shopper's history at GET /api/generations?shopper_id=…",
                    ))
                }
                _ => {}
            }
            client_route(route, req, ctx, credential).await
        }
        Access::FalSignature => {
            let delivery = webhooks::verified(req, ctx).await?;
            webhooks::fal(req, ctx, delivery).await
        }
        Access::ResultSignature => match route {
            Route::ResultImage(id) => {
                let image = results::verified(req, ctx, &id)?;
                results::serve(req, ctx, image).await
            }
            other => Err(misrouted(&other)),
        },
    }
}

fn public(route: Route, req: &Request, ctx: &Ctx) -> ApiResult<Response> {
    match route {
        Route::Health => json(200, &serde_json::json!({ "status": "ok" })),
        Route::OpenApi => openapi::document(),
        Route::WidgetScript => widget::script(req),
        Route::AdminPage => admin::dashboard::page(ctx.config.development),
        Route::AdminAsset(name) => admin::dashboard::static_asset(&name, ctx.config.development),
        other => Err(misrouted(&other)),
    }
}

/// Routes of a client's credentials (its access already checked). Each
/// obtains its `ApiClient` in the one round trip it needs: generations take
/// their reservation with it, job reads get the job with it, history reads
/// are batched with it.
async fn client_route(route: Route, req: &mut Request, ctx: &Ctx, credential: Credential) -> ApiResult<Response> {
    match route {
        Route::Generate => {
            let input = GenerationInput::read(req, ctx, "gen", credential.shopper()).await?;
            let reserve = input.reservation(generate::reservation_ttl_ms(ctx), crate::generation::sync::ENDPOINT);
            match auth::admit(req, ctx, &credential, Some(reserve), input.claim.clone()).await? {
                Admit::Client(client) => generate::run(ctx, &client, input).await,
                Admit::Replay(stored) => idempotency::replay(stored),
            }
        }
        Route::CreateJob => {
            let input = GenerationInput::read(req, ctx, "job", credential.shopper()).await?;
            let reserve = input.reservation(jobs::reservation_ttl_ms(ctx), crate::domain::job::ENDPOINT);
            match auth::admit(req, ctx, &credential, Some(reserve), input.claim.clone()).await? {
                Admit::Client(client) => jobs::create(req, ctx, &client, input).await,
                Admit::Replay(stored) => idempotency::replay(stored),
            }
        }
        Route::GetJob(id) => {
            let id = jobs::checked_id(&id)?;
            let (client, job) = auth::authenticate_with_job(req, ctx, &credential, jobs::read(ctx, id)).await?;
            jobs::show(ctx, &client, id, job).await
        }
        Route::CancelJob(id) => {
            let id = jobs::checked_id(&id)?;
            let (client, job) = auth::authenticate_with_job(req, ctx, &credential, jobs::read(ctx, id)).await?;
            jobs::cancel(ctx, &client, id, job).await
        }
        Route::JobEvents(id) => {
            let id = jobs::checked_id(&id)?;
            let (client, job) = auth::authenticate_with_job(req, ctx, &credential, jobs::read(ctx, id)).await?;
            jobs::events(req, ctx, &client, id, job).await
        }
        Route::Usage => {
            let client = auth::authenticate(req, ctx, &credential).await?;
            usage::show(ctx, &client)
        }
        Route::ListGenerations => {
            let page = generations::page_request(req)?;
            let key = credential.secret()?;
            let (_, results) = auth::authenticate_read(req, ctx, key, |key| generations::page_statement(ctx, key, &page)).await?;
            generations::list(ctx, page, results)
        }
        Route::WidgetSession => {
            let request = widget::SessionRequest::read(req).await?;
            let client = auth::authenticate(req, ctx, &credential).await?;
            widget::create_session(ctx, &client, request).await
        }
        Route::ShopperHistory => {
            let page = generations::page_request(req)?;
            let client = auth::authenticate(req, ctx, &credential).await?;
            shoppers::history(ctx, &client, page).await
        }
        Route::EraseShopper(shopper) => {
            let shopper = shoppers::parse_path(&shopper)?;
            let client = auth::authenticate(req, ctx, &credential).await?;
            shoppers::erase(ctx, &client, &shopper).await
        }
        Route::ListDeliveries => {
            let q = deliveries::query(req)?;
            let key = credential.secret()?;
            let (_, results) = auth::authenticate_read(req, ctx, key, |key| deliveries::page_statement(ctx, key, &q)).await?;
            deliveries::list(q, results)
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
        Route::AdminDeleteClient(id) => clients::delete(ctx, session, &id).await,
        Route::AdminRotateKey(id) => clients::rotate_key(req, ctx, session, &id).await,
        Route::AdminRevokeKey { client_id, key_id } => clients::revoke_key(ctx, session, &client_id, &key_id).await,
        Route::AdminRotateWebhookSecret(id) => clients::rotate_webhook_secret(ctx, session, &id).await,
        Route::AdminClientMetrics(id) => metrics::client_metrics(ctx, session, &id).await,
        Route::AdminClientShoppers(id) => metrics::client_shoppers(req, ctx, session, &id).await,
        Route::AdminGenerations => metrics::generations(req, ctx, session).await,
        Route::AdminUsage => usage::month(req, ctx, session).await,
        Route::AdminClientDeliveries(id) => admin::deliveries::list(req, ctx, session, &id).await,
        Route::AdminRedeliver(id) => admin::deliveries::redeliver(ctx, session, &id).await,
        Route::AdminResumeCallbacks(id) => admin::deliveries::resume_callbacks(ctx, session, &id).await,
        other => Err(misrouted(&other)),
    }
}

/// The route table gave a route an access its dispatcher does not serve: a
/// programming error, answered as a 500 rather than served unchecked.
fn misrouted(route: &Route) -> ApiError {
    ApiError::Internal(format!("route {route:?} is not served under its declared access"))
}
