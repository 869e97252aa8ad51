//! One admin login attempt, taken from its source's `LoginThrottle` and the
//! global one before the password is compared, and given back if it
//! succeeds (the rules are in `limiter::login`).

use crate::domain::ids::new_id;
use crate::error::{ApiError, ApiResult};
use crate::limiter::client::LoginLimiter;
use crate::limiter::login::{source_scope, LoginCall, LoginVerdict, GLOBAL_SCOPE};
use crate::limiter::protocol::LoginRequest;
use crate::request::header;
use crate::state::Ctx;
use futures_util::future::join;
use worker::Request;

/// An attempt both throttles have counted.
pub struct LoginAttempt {
    limiter: LoginLimiter,
    id: String,
    source: String,
    now: u64,
    /// An object still ran the previous release, which checks and records
    /// failures in two steps: this attempt is decided that way.
    legacy: bool,
}

/// The previous release's rules, for its objects during a rollout.
const LEGACY_WINDOW_MS: u64 = 15 * 60 * 1000;
const LEGACY_MAX_PER_SOURCE: usize = 10;
const LEGACY_MAX_OVERALL: usize = 100;

impl LoginAttempt {
    pub async fn take(req: &Request, ctx: &Ctx) -> ApiResult<Self> {
        let source = source_scope(header(req, "cf-connecting-ip").as_deref());
        let mut attempt = Self { limiter: ctx.login.clone(), id: new_id("login"), source, now: ctx.now, legacy: false };
        match attempt.take_counted().await {
            Ok(decided) => decided.map(|()| attempt),
            Err(e) => {
                worker::console_warn!("login throttle: falling back to the previous protocol ({e:?})");
                let _ = attempt.give_back().await;
                attempt.legacy = true;
                attempt.legacy_check().await?;
                Ok(attempt)
            }
        }
    }

    /// `Err`: an object could not answer this protocol. `Ok(Err)`: refused.
    async fn take_counted(&self) -> ApiResult<ApiResult<()>> {
        let take = |clean| LoginCall::Take { attempt: self.id.clone(), now: self.now, clean };
        let clean = match self.limiter.attempt(&self.source, &take(None)).await? {
            LoginVerdict::Taken { clean } => clean,
            LoginVerdict::Refused { retry_after_s } => return Ok(Err(too_many(retry_after_s))),
            LoginVerdict::GivenBack => return Err(out_of_turn()),
        };
        match self.limiter.attempt(GLOBAL_SCOPE, &take(Some(clean))).await? {
            LoginVerdict::Taken { .. } => Ok(Ok(())),
            LoginVerdict::Refused { retry_after_s } => {
                // Not tried, so not counted against the source either.
                self.limiter.attempt(&self.source, &self.give_back_call()).await?;
                Ok(Err(too_many(retry_after_s)))
            }
            LoginVerdict::GivenBack => Err(out_of_turn()),
        }
    }

    fn give_back_call(&self) -> LoginCall {
        LoginCall::GiveBack { attempt: self.id.clone() }
    }

    /// The password was right: the attempt no longer counts.
    pub async fn give_back(&self) -> ApiResult<()> {
        if self.legacy {
            return Ok(());
        }
        let call = self.give_back_call();
        let (source, global) = join(self.limiter.attempt(&self.source, &call), self.limiter.attempt(GLOBAL_SCOPE, &call)).await;
        source?;
        global?;
        Ok(())
    }

    /// The password was wrong. Counted attempts already count as failures;
    /// under the previous protocol the failure is recorded now.
    pub async fn failed(&self) -> ApiResult<()> {
        if !self.legacy {
            return Ok(());
        }
        let (a, b) = join(
            self.limiter.legacy(&self.source, &self.legacy_request(LEGACY_MAX_PER_SOURCE, true)),
            self.limiter.legacy(GLOBAL_SCOPE, &self.legacy_request(LEGACY_MAX_OVERALL, true)),
        )
        .await;
        a?;
        b?;
        Ok(())
    }

    async fn legacy_check(&self) -> ApiResult<()> {
        let (source, overall) = join(
            self.limiter.legacy(&self.source, &self.legacy_request(LEGACY_MAX_PER_SOURCE, false)),
            self.limiter.legacy(GLOBAL_SCOPE, &self.legacy_request(LEGACY_MAX_OVERALL, false)),
        )
        .await;
        let (source, overall) = (source?, overall?);
        if source.allowed && overall.allowed {
            return Ok(());
        }
        Err(too_many(source.retry_after_s.max(overall.retry_after_s)))
    }

    fn legacy_request(&self, max_failures: usize, record_failure: bool) -> LoginRequest {
        LoginRequest { now: self.now, window_ms: LEGACY_WINDOW_MS, max_failures, record_failure }
    }
}

fn out_of_turn() -> ApiError {
    ApiError::Internal("the login throttle answered out of turn".into())
}

fn too_many(retry_after_s: u64) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_login_attempts",
        message: "too many failed logins; wait before trying again".into(),
        retry_after_s,
    }
}
