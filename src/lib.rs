//! Entry points only: the request handler, the cron, and the Durable Object
//! classes (exported by their modules). Each builds its services from `Env`
//! here, once, and hands over.

pub mod auth;
pub mod bindings;
pub mod bounded;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod fal;
pub mod generation;
pub mod http;
pub mod limiter;
pub mod maintenance;
pub mod outbound;
pub mod request;
pub mod router;
pub mod secret;
pub mod state;
pub mod store;

use config::Config;
use state::{Ctx, Services};
use std::rc::Rc;
use worker::{event, Context, Date, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

thread_local! {
    static CONFIG: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

/// Settings are read once per isolate: vars and secrets cannot change
/// without a new deployment, which starts new isolates.
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
    let services = match config(&env).and_then(|config| Services::from_env(&env, config).map_err(|e| e.to_string())) {
        Ok(s) => Rc::new(s),
        Err(message) => {
            worker::console_error!("configuration error: {message}");
            let unavailable = error::ApiError::Unavailable { message: "the service is misconfigured".into() };
            return Ok(http::respond::error_response(unavailable));
        }
    };
    let now = request_time(&req, &services.config);
    Ok(http::handle(req, Ctx::new(services, wait, now)).await)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (config, db) = match (config(&env), bindings::database(&env)) {
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
    request::header(req, "x-test-now").and_then(|v| v.parse().ok()).unwrap_or(real)
}
