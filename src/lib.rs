//! Entry points only: build the request context from `Env` and hand over.

pub mod auth;
pub mod callbacks;
pub mod config;
pub mod domain;
pub mod error;
pub mod fal;
pub mod http;
pub mod jobs;
pub mod limiter;
pub mod maintenance;
pub mod metrics;
pub mod outbound;
pub mod router;
pub mod store;

use config::Config;
use std::rc::Rc;
use worker::{event, Context, Date, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

fn config(env: &Env) -> std::result::Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.get().cloned()) {
        return Ok(c);
    }
    let built = Rc::new(Config::from_env(env)?);
    CONFIG.with(|c| {
        let _ = c.set(built.clone());
    });
    Ok(built)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, wait: Context) -> Result<Response> {
    let config = match config(&env) {
        Ok(c) => c,
        Err(message) => {
            worker::console_error!("configuration error: {message}");
            return Ok(http::error_response(error::ApiError::Unavailable { message: "the service is misconfigured".into() }));
        }
    };
    let now = request_time(&req, &config);
    let db = env.d1("DB")?;
    Ok(http::handle(req, http::Ctx::new(config, env, db, wait, now)).await)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (config, db) = match (config(&env), env.d1("DB")) {
        (Ok(c), Ok(db)) => (c, db),
        _ => return worker::console_error!("maintenance skipped: configuration or D1 binding missing"),
    };
    maintenance::run(&db, &config, event.schedule() as u64).await;
}

/// The request's clock: real time, unless a test run turned on `TEST_CLOCK`
/// and sent `x-test-now` (ms since the epoch).
fn request_time(req: &Request, config: &Config) -> u64 {
    let real = Date::now().as_millis();
    if !config.test_clock {
        return real;
    }
    http::header(req, "x-test-now").and_then(|v| v.parse().ok()).unwrap_or(real)
}
