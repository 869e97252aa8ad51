//! What a request presents to act for a client: a secret key (a shop's
//! servers), a publishable key with the shopper's anonymous id (a shop's
//! page), or a widget session token (a shop's page, for the shopper its back
//! end named). Everything checkable without storage is checked here: format
//! and checksum, a token's signature, expiry and origin, and what this
//! isolate remembers of recent refusals.

use super::refusals::Refusals;
use crate::domain::api_key::{ApiKey, KeyKind};
use crate::domain::ids::ClientId;
use crate::domain::shopper::ShopperId;
use crate::domain::widget_token::{TokenError, WidgetToken, PREFIX as TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::limiter::protocol::Credential as Presented;
use crate::request::header;
use crate::state::Ctx;
use std::cell::RefCell;
use worker::{Date, Request};

/// The header in which the widget sends its anonymous shopper id with a publishable key.
pub const SHOPPER_HEADER: &str = "x-tryon-shopper";

thread_local! {
    static REFUSALS: RefCell<Refusals> = RefCell::new(Refusals::default());
}

pub enum Credential {
    Secret(ApiKey),
    Publishable { key: ApiKey, shopper: ShopperId },
    Token(WidgetToken),
}

impl Credential {
    pub fn client_id(&self) -> &ClientId {
        match self {
            Credential::Secret(key) | Credential::Publishable { key, .. } => key.client_id(),
            Credential::Token(token) => &token.client_id,
        }
    }

    /// The shopper a browser credential acts for (`None`: a shop's server).
    pub fn shopper(&self) -> Option<&ShopperId> {
        match self {
            Credential::Secret(_) => None,
            Credential::Publishable { shopper, .. } => Some(shopper),
            Credential::Token(token) => Some(&token.shopper_id),
        }
    }

    /// What the client's object checks: the key's hash (none for a token,
    /// whose signature the worker checked) and which credential it is.
    pub fn for_limiter(&self) -> (String, Presented) {
        match self {
            Credential::Secret(key) => (key.hash().0, Presented::Secret),
            Credential::Publishable { key, .. } => (key.hash().0, Presented::Publishable),
            Credential::Token(_) => (String::new(), Presented::WidgetToken),
        }
    }

    /// The secret key, for routes only a shop's servers may call.
    pub fn secret(&self) -> ApiResult<&ApiKey> {
        match self {
            Credential::Secret(key) => Ok(key),
            _ => Err(ApiError::forbidden(
                "secret_key_required",
                "this endpoint needs the shop's secret API key; publishable keys and widget tokens may only create and follow try-ons",
            )),
        }
    }
}

/// The source of a request, as Cloudflare reports it.
pub fn source(req: &Request) -> String {
    header(req, "cf-connecting-ip").unwrap_or_else(|| "unknown".into())
}

/// Isolate memory runs on real time, whatever a test's request clock says.
fn real_now() -> u64 {
    Date::now().as_millis()
}

/// Remembers that the client's object (or D1) refused `credential`.
pub fn remember_refusal(req: &Request, credential: &Credential) {
    if let Credential::Secret(key) | Credential::Publishable { key, .. } = credential {
        REFUSALS.with(|r| r.borrow_mut().refused(&key.hash().0, &source(req), real_now()));
    }
}

/// Remembers a key its client's object (or D1) accepted: from a source that
/// is being slowed down, it is still let through (see `presented`).
pub fn remember_admission(credential: &Credential) {
    if let Credential::Secret(key) | Credential::Publishable { key, .. } = credential {
        REFUSALS.with(|r| r.borrow_mut().admitted(&key.hash().0, real_now()));
    }
}

/// The credential the request presents. A source that has presented too many
/// bad credentials this minute is refused before any storage is asked,
/// unless what it presents now is known good without storage: a widget
/// token (its signature was checked) or a key admitted within the minute.
/// Shops' servers and shoppers behind an address shared with an attacker
/// (a NAT, a carrier's shared address) keep working.
pub fn presented(req: &Request, ctx: &Ctx) -> ApiResult<Credential> {
    let source = source(req);
    let now = real_now();
    let throttled = REFUSALS.with(|r| r.borrow().throttled(&source, now, ctx.config.bad_credentials_per_minute));
    let read = read(req, ctx);
    if let Some(retry_after_s) = throttled {
        let known_good = match &read {
            Ok(Credential::Token(_)) => true,
            Ok(Credential::Secret(key) | Credential::Publishable { key, .. }) => REFUSALS.with(|r| r.borrow().recently_admitted(&key.hash().0, now)),
            Err(_) => false,
        };
        if !known_good {
            return Err(ApiError::TooManyRequests {
                code: "too_many_invalid_credentials",
                message: "too many requests with invalid credentials from this address; retry after the delay in Retry-After".into(),
                retry_after_s,
            });
        }
    }
    let credential = read.inspect_err(|e| {
        if e.status() == 401 {
            REFUSALS.with(|r| r.borrow_mut().count(&source, now));
        }
    })?;
    if let Credential::Secret(key) | Credential::Publishable { key, .. } = &credential {
        if REFUSALS.with(|r| r.borrow().is_refused(&key.hash().0, now)) {
            REFUSALS.with(|r| r.borrow_mut().count(&source, now));
            return Err(invalid_key());
        }
    }
    Ok(credential)
}

fn read(req: &Request, ctx: &Ctx) -> ApiResult<Credential> {
    let raw = match (header(req, "x-api-key"), header(req, "authorization")) {
        (Some(key), _) => key,
        (None, Some(auth)) => match auth.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_string(),
            _ => return Err(ApiError::unauthenticated("invalid_authorization", "use `Authorization: Bearer <api key or widget token>` or the `x-api-key` header")),
        },
        (None, None) => return Err(ApiError::unauthenticated("missing_api_key", "send your API key in the `x-api-key` header")),
    };
    let raw = raw.trim();
    if raw.starts_with(TOKEN_PREFIX) {
        return token(req, ctx, raw).map(Credential::Token);
    }
    let key = ApiKey::parse(raw).map_err(|_| ApiError::unauthenticated("invalid_api_key", "the API key is malformed"))?;
    match key.kind() {
        KeyKind::Secret => Ok(Credential::Secret(key)),
        KeyKind::Publishable => {
            let shopper = header(req, SHOPPER_HEADER).as_deref().and_then(ShopperId::anonymous).ok_or_else(|| {
                ApiError::bad_request(
                    "missing_shopper_id",
                    format!("a publishable key needs the shopper's anonymous id in `{SHOPPER_HEADER}` (`anon_` and 22 to 64 letters or digits)"),
                )
            })?;
            Ok(Credential::Publishable { key, shopper })
        }
    }
}

/// A widget session token: signed by us, not expired, presented from the
/// origin it was minted for.
fn token(req: &Request, ctx: &Ctx, raw: &str) -> ApiResult<WidgetToken> {
    let keys = ctx.config.signing_keys.as_ref().ok_or_else(|| ApiError::Unavailable {
        message: "widget session tokens are not configured (SIGNING_KEYS is not set)".into(),
    })?;
    let token = WidgetToken::verify(raw, keys, ctx.now).map_err(|e| match e {
        TokenError::Invalid => ApiError::unauthenticated("invalid_widget_token", "the widget token is not one we issued, or was altered"),
        TokenError::Expired => ApiError::unauthenticated("widget_token_expired", "the widget token has expired; ask the shop's back end for a new one"),
    })?;
    if header(req, "origin").as_deref() != Some(token.origin.as_str()) {
        return Err(ApiError::unauthenticated(
            "widget_token_origin_mismatch",
            "this widget token was issued for another origin than the page using it",
        ));
    }
    Ok(token)
}

pub fn invalid_key() -> ApiError {
    ApiError::unauthenticated("invalid_api_key", "the API key is not valid")
}
