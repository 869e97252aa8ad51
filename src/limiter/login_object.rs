//! The `LoginThrottle` Durable Object: admin login failures, one object per
//! source (`ip:<address>`) and one for all sources (`*`). A class of its own,
//! so a login flood never queues behind, or in front of, a shop's limiter.

use super::login::login_allowed;
use super::object::body;
use super::protocol::{LoginReply, LoginRequest};
use super::schema;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct LoginThrottle {
    state: State,
}

#[derive(Deserialize)]
struct FailureRow {
    at_ms: u64,
}

impl DurableObject for LoginThrottle {
    fn new(state: State, _env: Env) -> Self {
        if let Err(e) = schema::migrate(&state.storage().sql(), schema::LOGIN_THROTTLE) {
            worker::console_error!("login throttle schema: {e}");
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let login: LoginRequest = body(&mut req).await?;
        Response::from_json(&self.login(&login)?)
    }
}

impl LoginThrottle {
    fn login(&self, req: &LoginRequest) -> Result<LoginReply> {
        let sql = self.state.storage().sql();
        let window_start = req.now.saturating_sub(req.window_ms) as i64;
        if req.record_failure {
            sql.exec("DELETE FROM login_failures WHERE at_ms <= ?", Some(vec![window_start.into()]))?;
            sql.exec("INSERT INTO login_failures (at_ms) VALUES (?)", Some(vec![(req.now as i64).into()]))?;
            return Ok(LoginReply { allowed: true, retry_after_s: 0 });
        }
        let failures: Vec<u64> = sql
            .exec("SELECT at_ms FROM login_failures WHERE at_ms > ?", Some(vec![window_start.into()]))?
            .to_array::<FailureRow>()?
            .into_iter()
            .map(|r| r.at_ms)
            .collect();
        Ok(match login_allowed(&failures, req.now, req.window_ms, req.max_failures) {
            Ok(()) => LoginReply { allowed: true, retry_after_s: 0 },
            Err(retry_after_s) => LoginReply { allowed: false, retry_after_s },
        })
    }
}
