//! Who is calling: a client by API key, or an admin by session cookie.
//! A malformed credential is refused, never treated as anonymous.

use crate::domain::api_key::ApiKey;
use crate::domain::ids::ClientId;
use crate::domain::session::{session_state, token_from_cookie_header, SessionState, SessionToken};
use crate::error::{ApiError, ApiResult};
use crate::http::{header, Ctx};
use crate::store::{self, clients::ClientRow};
use worker::Request;

/// A client whose key was accepted for this request.
pub struct ApiClient {
    pub id: ClientId,
    pub row: ClientRow,
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

pub async fn authenticate_client(req: &Request, ctx: &Ctx) -> ApiResult<ApiClient> {
    let key = presented_key(req)?;
    let row = store::clients::find_by_key(&ctx.db, &key.hash(), key.client_id(), ctx.now)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid_api_key", "the API key is not valid"))?;
    if !row.is_active() {
        return Err(ApiError::forbidden("client_inactive", "this client account is deactivated"));
    }
    Ok(ApiClient { id: key.client_id().clone(), row })
}

/// A valid admin session, with the hash that identifies it in storage.
pub struct AdminSession {
    pub token_hash: String,
    pub expires_at: u64,
    pub idle_expires_at: u64,
}

pub async fn require_admin(req: &Request, ctx: &Ctx) -> ApiResult<AdminSession> {
    let unauthenticated = || ApiError::unauthenticated("not_logged_in", "log in at POST /admin/login");
    let cookie = header(req, "cookie").ok_or_else(unauthenticated)?;
    let token = token_from_cookie_header(&cookie)
        .and_then(SessionToken::parse)
        .ok_or_else(unauthenticated)?;
    let token_hash = token.hash();
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
