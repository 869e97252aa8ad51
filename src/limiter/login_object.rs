//! The `LoginThrottle` Durable Object: admin login attempts, one object per
//! source (`ip:<address>`, `ip6:<prefix>::/64`) and one for all sources
//! (`*`). A class of its own, so a login flood never queues behind, or in
//! front of, a shop's limiter. Each call is decided and written in one
//! synchronous step (the object handles one call at a time), which is what
//! makes taking an attempt atomic. The decisions are in `login.rs`.

use super::login::{global_take, source_take, LoginCall, LoginVerdict, WINDOW_MS};
use super::object::body;
use super::protocol::{LoginReply, LoginRequest};
use super::schema;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

#[durable_object]
pub struct LoginThrottle {
    state: State,
}

#[derive(Deserialize)]
struct AttemptRow {
    at_ms: u64,
}

#[derive(Deserialize)]
struct SpacingRow {
    next_ms: u64,
}

impl DurableObject for LoginThrottle {
    fn new(state: State, _env: Env) -> Self {
        if let Err(e) = schema::migrate(&state.storage().sql(), schema::LOGIN_THROTTLE) {
            worker::console_error!("login throttle schema: {e}");
        }
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // `/attempt` is this release's protocol; `/login` the previous one,
        // still answered for workers of that release during a rollout.
        if req.path() == "/attempt" {
            let call: LoginCall = body(&mut req).await?;
            return Response::from_json(&self.apply(&call)?);
        }
        let legacy: LoginRequest = body(&mut req).await?;
        Response::from_json(&self.legacy(&legacy)?)
    }
}

impl LoginThrottle {
    fn apply(&self, call: &LoginCall) -> Result<LoginVerdict> {
        let sql = self.state.storage().sql();
        match call {
            LoginCall::GiveBack { attempt } => {
                sql.exec("DELETE FROM login_attempts WHERE id = ?", Some(vec![attempt.as_str().into()]))?;
                Ok(LoginVerdict::GivenBack)
            }
            LoginCall::Take { attempt, now, clean } => {
                let window_start = now.saturating_sub(WINDOW_MS) as i64;
                sql.exec("DELETE FROM login_attempts WHERE at_ms <= ?", Some(vec![window_start.into()]))?;
                let attempts: Vec<u64> = sql
                    .exec("SELECT at_ms FROM login_attempts", None)?
                    .to_array::<AttemptRow>()?
                    .into_iter()
                    .map(|r| r.at_ms)
                    .collect();
                // The global object is told whether the source was clean;
                // a source object is not (it is the one that knows).
                let verdict = match clean {
                    None => source_take(&attempts, *now),
                    Some(clean) => {
                        let (verdict, next) = global_take(&attempts, *clean, next_dirty_ms(&sql)?, *now);
                        if let Some(next) = next {
                            sql.exec(
                                "INSERT INTO login_spacing (id, next_ms) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET next_ms = excluded.next_ms",
                                Some(vec![(next as i64).into()]),
                            )?;
                        }
                        verdict
                    }
                };
                if matches!(verdict, LoginVerdict::Taken { .. }) {
                    sql.exec(
                        "INSERT OR REPLACE INTO login_attempts (id, at_ms) VALUES (?, ?)",
                        Some(vec![attempt.as_str().into(), (*now as i64).into()]),
                    )?;
                }
                Ok(verdict)
            }
        }
    }
}

impl LoginThrottle {
    /// The previous release's protocol over this release's table: a check
    /// counts the attempts in the window, a failure is recorded after the fact.
    fn legacy(&self, req: &LoginRequest) -> Result<LoginReply> {
        let sql = self.state.storage().sql();
        let window_start = req.now.saturating_sub(req.window_ms) as i64;
        if req.record_failure {
            let id = format!("legacy-{}-{}", req.now, crate::domain::ids::new_id("f"));
            sql.exec("INSERT INTO login_attempts (id, at_ms) VALUES (?, ?)", Some(vec![id.into(), (req.now as i64).into()]))?;
            return Ok(LoginReply { allowed: true, retry_after_s: 0 });
        }
        let attempts: Vec<u64> = sql
            .exec("SELECT at_ms FROM login_attempts WHERE at_ms > ?", Some(vec![window_start.into()]))?
            .to_array::<AttemptRow>()?
            .into_iter()
            .map(|r| r.at_ms)
            .collect();
        if attempts.len() < req.max_failures {
            return Ok(LoginReply { allowed: true, retry_after_s: 0 });
        }
        let oldest = attempts.iter().min().copied().unwrap_or(req.now);
        let retry_after_s = (oldest + req.window_ms).saturating_sub(req.now).div_ceil(1000).max(1);
        Ok(LoginReply { allowed: false, retry_after_s })
    }
}

fn next_dirty_ms(sql: &SqlStorage) -> Result<u64> {
    Ok(sql
        .exec("SELECT next_ms FROM login_spacing WHERE id = 1", None)?
        .to_array::<SpacingRow>()?
        .first()
        .map_or(0, |r| r.next_ms))
}
