//! Who is calling: a client by API key, or an admin by session cookie.
//! A malformed credential is refused, never treated as anonymous, and bad
//! credentials cost as little as possible (see `refusals`).

pub mod credential;
pub mod refusals;

use crate::domain::api_key::ApiKey;
use crate::domain::client::origin_allowed;
use crate::domain::ids::ClientId;
use crate::domain::shopper::ShopperId;
use crate::domain::session::{session_state, token_from_cookie_header, SessionState, SessionToken};
use crate::error::{ApiError, ApiResult};
use crate::limiter::jobs::JobState;
use crate::limiter::protocol::{AdmitRequest, Decision, IdempotencyClaim, JobRead, Refusal, ReserveRequest, StoredResponse};
use crate::request::header;
use crate::state::Ctx;
use crate::store::{self, clients::ClientRow};
pub use credential::{presented, Credential};
use credential::{invalid_key, remember_admission, remember_refusal};
use worker::{D1PreparedStatement, D1Result, Request};

/// A client whose key was accepted for this request.
pub struct ApiClient {
    pub id: ClientId,
    pub name: String,
    /// For a browser credential, the shopper it acts for: what it may see
    /// and do is that shopper's only.
    pub shopper: Option<ShopperId>,
    pub allowed_origins: Vec<String>,
}

/// Authenticates through the client's limiter object, which holds its keys,
/// status, allowed origins and limits: one round trip decides everything.
/// With `reserve`, the request also takes a rate token, a unit of monthly
/// quota and a concurrency slot (all or none). The limits it reports go into
/// the response headers.
pub async fn admit(
    req: &Request,
    ctx: &Ctx,
    credential: &Credential,
    reserve: Option<ReserveRequest>,
    idempotency: Option<IdempotencyClaim>,
) -> ApiResult<Admit> {
    Ok(match decide(req, ctx, credential, reserve, idempotency, None).await? {
        Decided::Client(client, _) => Admit::Client(client),
        Decided::Replay(response) => Admit::Replay(response),
    })
}

/// Authenticates and reads one of the client's jobs in the same round trip
/// (the object keeps the client's live jobs). The job comes back only once
/// the key passed, and only if it is this client's.
pub async fn authenticate_with_job(req: &Request, ctx: &Ctx, credential: &Credential, job: JobRead) -> ApiResult<(ApiClient, Option<JobState>)> {
    match decide(req, ctx, credential, None, None, Some(job)).await? {
        Decided::Client(client, job) => Ok((client, job)),
        Decided::Replay(_) => Err(ApiError::Internal("a replay without an idempotency key".into())),
    }
}

enum Decided {
    Client(ApiClient, Option<JobState>),
    Replay(StoredResponse),
}

async fn decide(
    req: &Request,
    ctx: &Ctx,
    credential: &Credential,
    reserve: Option<ReserveRequest>,
    idempotency: Option<IdempotencyClaim>,
    job: Option<JobRead>,
) -> ApiResult<Decided> {
    let (key_hash, presented) = credential.for_limiter();
    let request = AdmitRequest {
        key_hash,
        credential: presented,
        shopper_id: credential.shopper().map(|s| s.as_str().to_string()),
        origin: header(req, "origin"),
        now: ctx.now,
        reserve,
        idempotency,
        job,
    };
    let client = credential.client_id();
    let decision = ctx.timed("limiter", ctx.limiter.admit(client, &request)).await?;
    match decision {
        Decision::Admitted(admission) => {
            remember_admission(credential);
            ctx.set_limits(admission.limits);
            let principal = ApiClient {
                id: client.clone(),
                name: admission.client.name,
                shopper: credential.shopper().cloned(),
                allowed_origins: admission.client.allowed_origins,
            };
            Ok(Decided::Client(principal, admission.job))
        }
        Decision::Replay { response, limits } => {
            if let Some(limits) = limits {
                ctx.set_limits(limits);
            }
            Ok(Decided::Replay(response))
        }
        Decision::Refused { refusal, limits } => {
            if let Some(limits) = limits {
                ctx.set_limits(limits);
            }
            if refusal == Refusal::InvalidApiKey {
                remember_refusal(req, credential);
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

/// Authenticates a request that takes nothing from the limits (reads, cancels).
pub async fn authenticate(req: &Request, ctx: &Ctx, credential: &Credential) -> ApiResult<ApiClient> {
    match admit(req, ctx, credential, None, None).await? {
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
        Refusal::OriginRequired => ApiError::forbidden(
            "origin_required",
            "publishable keys and widget tokens work only from web pages on the client's allowed origins (the request had no Origin)",
        ),
        Refusal::WidgetRateLimited { retry_after_s } => too_many("widget_rate_limited", "too many try-ons from this shop's pages this minute; retry after the delay in Retry-After", retry_after_s),
        Refusal::ShopperRateLimited { retry_after_s } => too_many("shopper_rate_limited", "too many try-ons by this shopper this minute; retry after the delay in Retry-After", retry_after_s),
        Refusal::ShopperDailyLimit { retry_after_s } => too_many("shopper_daily_limit", "this shopper reached today's try-on limit; it resets at midnight UTC", retry_after_s),
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

fn inactive() -> ApiError {
    ApiError::forbidden("client_inactive", "this client account is deactivated")
}

fn origin_not_allowed() -> ApiError {
    ApiError::forbidden("origin_not_allowed", "this origin is not allowed to use this API key; add it to the client's allowed origins")
}

/// Authenticates a read against D1, batching the key lookup with the
/// statements that read the client's data (built from the key, which names
/// its client) so a read costs one round trip. Those statements must guard
/// themselves with the key too (so a forged key makes them read nothing), and
/// their results are only returned once the key proved to be the client's.
pub async fn authenticate_read(
    req: &Request,
    ctx: &Ctx,
    key: &ApiKey,
    reads: impl FnOnce(&ApiKey) -> ApiResult<Vec<D1PreparedStatement>>,
) -> ApiResult<(ApiClient, Vec<D1Result>)> {
    let client = key.client_id().clone();
    let mut statements = vec![store::clients::key_owner_statement(&ctx.db, &key.hash(), &client, ctx.now)?];
    statements.extend(reads(key)?);
    let mut results = ctx.timed("store", store::batch(&ctx.db, statements)).await?.into_iter();
    let owner = match results.next() {
        Some(result) => result.results::<ClientRow>().map_err(store::d1_error)?.into_iter().next(),
        None => None,
    };
    let results: Vec<D1Result> = results.collect();
    let Some(row) = owner else {
        remember_refusal(req, &Credential::Secret(key.clone()));
        return Err(invalid_key());
    };
    if !row.is_active() {
        return Err(inactive());
    }
    remember_admission(&Credential::Secret(key.clone()));
    if let Some(origin) = header(req, "origin") {
        if !origin_allowed(&row.origins(), &origin) {
            return Err(origin_not_allowed());
        }
    }
    let allowed_origins = row.origins();
    Ok((ApiClient { id: client, name: row.name, shopper: None, allowed_origins }, results))
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
