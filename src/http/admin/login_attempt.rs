//! One admin login attempt, taken from its source's `LoginThrottle` and the
//! global one before the password is compared, and given back if it
//! succeeds (the rules are in `limiter::login`).

use crate::domain::ids::new_id;
use crate::error::{ApiError, ApiResult};
use crate::limiter::client::LoginLimiter;
use crate::limiter::login::{source_scope, LoginCall, LoginVerdict, GLOBAL_SCOPE};
use crate::request::header;
use crate::state::Ctx;
use futures_util::future::join;
use worker::Request;

/// An attempt both throttles have counted.
pub struct LoginAttempt {
    limiter: LoginLimiter,
    id: String,
    source: String,
}

impl LoginAttempt {
    pub async fn take(req: &Request, ctx: &Ctx) -> ApiResult<Self> {
        let source = source_scope(header(req, "cf-connecting-ip").as_deref());
        let attempt = Self { limiter: ctx.login.clone(), id: new_id("login"), source };
        let take = |clean| LoginCall::Take { attempt: attempt.id.clone(), now: ctx.now, clean };
        let clean = match attempt.limiter.login(&attempt.source, &take(None)).await? {
            LoginVerdict::Taken { clean } => clean,
            LoginVerdict::Refused { retry_after_s } => return Err(too_many(retry_after_s)),
            LoginVerdict::GivenBack => return Err(ApiError::Internal("the login throttle answered out of turn".into())),
        };
        match attempt.limiter.login(GLOBAL_SCOPE, &take(Some(clean))).await? {
            LoginVerdict::Taken { .. } => Ok(attempt),
            other => {
                // Not tried, so not counted against the source either.
                attempt.limiter.login(&attempt.source, &attempt.give_back_call()).await?;
                match other {
                    LoginVerdict::Refused { retry_after_s } => Err(too_many(retry_after_s)),
                    _ => Err(ApiError::Internal("the login throttle answered out of turn".into())),
                }
            }
        }
    }

    fn give_back_call(&self) -> LoginCall {
        LoginCall::GiveBack { attempt: self.id.clone() }
    }

    pub async fn give_back(&self) -> ApiResult<()> {
        let call = self.give_back_call();
        let (source, global) = join(self.limiter.login(&self.source, &call), self.limiter.login(GLOBAL_SCOPE, &call)).await;
        source?;
        global?;
        Ok(())
    }
}

fn too_many(retry_after_s: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_login_attempts",
        message: "too many failed logins; wait before trying again".into(),
        retry_after_s,
    }
}
