//! Who is calling: a client by API key, or an admin by session cookie.
//! A malformed credential is refused, never treated as anonymous.

use crate::domain::api_key::ApiKey;
use crate::domain::client::origin_allowed;
use crate::domain::ids::ClientId;
use crate::domain::session::{session_state, token_from_cookie_header, SessionState, SessionToken};
use crate::error::{ApiError, ApiResult};
use crate::limiter::protocol::{AdmitRequest, Decision, IdempotencyClaim, Refusal, ReserveRequest, StoredResponse};
use crate::request::header;
use crate::state::Ctx;
use crate::store::{self, clients::ClientRow};
use worker::{D1PreparedStatement, D1Result, Request};

/// A client whose key was accepted for this request.
pub struct ApiClient {
    pub id: ClientId,
    pub name: String,
}

/// Finds the key in `x-api-key` or `Authorization: Bearer`.
pub fn presented_key(req: &Request) -> ApiResult<ApiKey> {
    let raw = match (header(req, "x-api-key"), header(req, "authorization")) {
        (Some(key), _) => key,
        (None, Some(auth)) => match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_string(),
            _ => return Err(ApiError::unauthenticated("invalid_authorization", "use `Authorization: Bearer <api key>` or the `x-api-key` header")),
        },
        (None, None) => {
            return Err(ApiError::unauthenticated("missing_api_key", "send your API key in the `x-api-key` header"))
        }
    };
    ApiKey::parse(raw.trim())
        .map_err(|_| ApiError::unauthenticated("invalid_api_key", "the API key is malformed"))
}

/// Authenticates through the client's limiter object, which holds its keys,
/// status, allowed origins and limits: one round trip decides everything.
/// With `reserve`, the request also takes a rate token, a unit of monthly
/// quota and a concurrency slot (all or none). The limits it reports go into
/// the response headers.
pub async fn admit(
    req: &Request,
    ctx: &Ctx,
    key: &ApiKey,
    reserve: Option<ReserveRequest>,
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<Admit> {
    let request = AdmitRequest { key_hash: key.hash().0, origin: header(req, "origin"), now: ctx.now, reserve, idempotency };
    let decision = ctx.timed("limiter", ctx.limiter.admit(key.client_id(), &request)).await?;
    match decision {
        Decision::Admitted(admission) => {
            ctx.set_limits(admission.limits);
            Ok(Admit::Client(ApiClient { id: key.client_id().clone(), name: admission.client.name }))
        }
        Decision::Replay { response, limits } => {
            if let Some(limits) = limits {
                ctx.set_limits(limits);
            }
            Ok(Admit::Replay(response))
        }
        Decision::Refused { refusal, limits } => {
            if let Some(limits) = limits {
                ctx.set_limits(limits);
            }
            Err(refusal_error(refusal))
        }
    }
}

pub enum Admit {
    Client(ApiClient),
    /// The request repeats an idempotency key: answer with the stored response.
    Replay(StoredResponse),
}

/// Authenticates through the limiter while `read` runs beside it (one round
/// trip of latency); the read's result is handed back only once the key passed.
pub async fn authenticate_alongside<T>(
    req: &Request,
    ctx: &Ctx,
    key: &ApiKey,
    read: impl std::future::Future<Output = ApiResult<T>>,
) -> ApiResult<(ApiClient, T)> {
    let (client, value) = futures_util::future::join(authenticate(req, ctx, key), read).await;
    Ok((client?, value?))
}

/// Authenticates a request that takes nothing from the limits (reads, cancels).
pub async fn authenticate(req: &Request, ctx: &Ctx, key: &ApiKey) -> ApiResult<ApiClient> {
    match admit(req, ctx, key, None, None).await? {
        Admit::Client(client) => Ok(client),
        Admit::Replay(_) => Err(ApiError::Internal("a replay without an idempotency key".into())),
    }
}

fn refusal_error(refusal: Refusal) -> ApiError {
    let too_many = |code, message: &str, retry_after_s| ApiError::TooManyRequests { code, message: message.into(), retry_after_s };
    match refusal {
        Refusal::InvalidApiKey => invalid_key(),
        Refusal::ClientInactive => inactive(),
        Refusal::OriginNotAllowed => origin_not_allowed(),
        Refusal::IdempotencyMismatch => ApiError::invalid(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request; use a new key for a new request",
        ),
        Refusal::IdempotencyInProgress => ApiError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry when it has finished",
        ),
        Refusal::RateLimited { retry_after_s } => too_many("rate_limited", "too many generations this minute; retry after the delay in Retry-After", retry_after_s),
        Refusal::QuotaExceeded { retry_after_s } => too_many("quota_exceeded", "the monthly generation quota is used up; it resets at the start of next month (UTC)", retry_after_s),
        Refusal::TooManyConcurrent { retry_after_s } => too_many("too_many_concurrent", "too many generations in progress for this client; retry when one finishes", retry_after_s),
    }
}

fn invalid_key() -> ApiError {
    ApiError::unauthenticated("invalid_api_key", "the API key is not valid")
}

fn inactive() -> ApiError {
    ApiError::forbidden("client_inactive", "this client account is deactivated")
}

fn origin_not_allowed() -> ApiError {
    ApiError::forbidden("origin_not_allowed", "this origin is not allowed to use this API key; add it to the client's allowed origins")
}

/// Authenticates a read against D1, batching the key lookup with the
/// statements that read the client's data (built from the id inside the
/// key) so a read costs one round trip. Their results are only returned once
/// the key proved to belong to that client.
pub async fn authenticate_read(
    req: &Request,
    ctx: &Ctx,
    key: &ApiKey,
    reads: impl FnOnce(&ClientId) -> ApiResult<Vec<D1PreparedStatement>>,
) -> ApiResult<(ApiClient, Vec<D1Result>)> {
    let client = key.client_id().clone();
    let mut statements = vec![store::clients::key_owner_statement(&ctx.db, &key.hash(), &client, ctx.now)?];
    statements.extend(reads(&client)?);
    let mut results = ctx.timed("store", store::batch(&ctx.db, statements)).await?.into_iter();
    let owner = match results.next() {
        Some(result) => result.results::<ClientRow>().map_err(store::d1_error)?.into_iter().next(),
        None => None,
    };
    let results: Vec<D1Result> = results.collect();
    let row = owner.ok_or_else(invalid_key)?;
    if !row.is_active() {
        return Err(inactive());
    }
    if let Some(origin) = header(req, "origin") {
        if !origin_allowed(&row.origins(), &origin) {
            return Err(origin_not_allowed());
        }
    }
    Ok((ApiClient { id: client, name: row.name }, results))
}

/// A valid admin session, with the hash that identifies it in storage.
pub struct AdminSession {
    pub token_hash: String,
    pub expires_at: u64,
    pub idle_expires_at: u64,
}

pub async fn admin_session(req: &Request, ctx: &Ctx) -> ApiResult<AdminSession> {
    let unauthenticated = || ApiError::unauthenticated("not_logged_in", "log in at POST /admin/login");
    let cookie = header(req, "cookie").ok_or_else(unauthenticated)?;
    let token = token_from_cookie_header(&cookie)
        .and_then(SessionToken::parse)
        .ok_or_else(unauthenticated)?;
    let password_digest = ctx.config.admin_password_digest.ok_or_else(unauthenticated)?;
    let token_hash = token.storage_key(&password_digest);
    let times = store::sessions::get(&ctx.db, &token_hash).await?.ok_or_else(unauthenticated)?;
    match session_state(times, ctx.now, ctx.config.session_idle_timeout_ms) {
        SessionState::Valid { touch } => {
            if touch {
                store::sessions::touch(&ctx.db, &token_hash, ctx.now).await?;
            }
            let last_seen = if touch { ctx.now } else { times.last_seen_at };
            Ok(AdminSession {
                token_hash,
                expires_at: times.expires_at,
                idle_expires_at: (last_seen + ctx.config.session_idle_timeout_ms).min(times.expires_at),
            })
        }
        SessionState::Expired | SessionState::Idle => {
            Err(ApiError::unauthenticated("session_expired", "the session has expired; log in again"))
        }
    }
}

/// Admin requests that change state must come from our own pages (or from a
/// tool that sends no `Origin`), so another site cannot ride the admin's cookie.
pub fn require_same_origin(req: &Request) -> ApiResult<()> {
    let foreign = || ApiError::forbidden("foreign_origin", "cross-site admin requests are refused");
    if header(req, "sec-fetch-site").is_some_and(|site| site == "cross-site" || site == "same-site") {
        return Err(foreign());
    }
    if let Some(origin) = header(req, "origin") {
        let own = req.url()?.origin().ascii_serialization();
        if origin != own {
            return Err(foreign());
        }
    }
    Ok(())
}
