//! Entry points only: the request handler, the cron, the events queue's
//! consumer, and the Durable Object classes (exported by their modules).
//! Each takes its services (built from `Env` once per isolate) and hands over.

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
pub mod results;
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
    static SERVICES: std::cell::OnceCell<Rc<Services>> = const { std::cell::OnceCell::new() };
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

/// The services, built once per isolate like the settings: bindings are the
/// isolate's, not the request's (the runtime hands every request the same
/// `env`, and exposes it module-wide as `import { env } from
/// "cloudflare:workers"`), and looking each one up costs calls into the
/// runtime that a `/health` request would otherwise spend most of its time on.
fn services(env: &Env) -> std::result::Result<Rc<Services>, String> {
    if let Some(s) = SERVICES.with(|s| s.get().cloned()) {
        return Ok(s);
    }
    let built = Rc::new(Services::from_env(env, config(env)?).map_err(|e| e.to_string())?);
    SERVICES.with(|s| {
        let _ = s.set(built.clone());
    });
    Ok(built)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, wait: Context) -> Result<Response> {
    let services = match services(&env) {
        Ok(s) => s,
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
    let now = event.schedule() as u64;
    // Images first: a row is deleted only once its image is.
    match bindings::results(&env) {
        Ok(bucket) => maintenance::keep_results(&db, &store::results::ResultBucket::new(bucket), &config, now).await,
        Err(_) => worker::console_error!("result maintenance skipped: RESULTS binding missing"),
    }
    maintenance::run(&db, &config, now).await;
}

/// The events queue and its dead-letter queue (one consumer for both, told
/// apart by the batch's queue name). Each message is handled on its own and
/// acknowledged or retried with its own delay; messages of a batch run
/// concurrently, so one slow receiver does not hold the others.
async fn consume(batch: worker::worker_sys::MessageBatch, env: Env) {
    use events::verdict::QueueAction;
    use worker::js_sys::{Array, Reflect};
    use worker::wasm_bindgen::{JsCast, JsValue};
    use worker::worker_sys::Message;

    let services = match services(&env) {
        Ok(s) => s,
        Err(message) => {
            worker::console_error!("events not processed, configuration error: {message}");
            let _ = batch.retry_all(retry_options(60));
            return;
        }
    };
    let dead_letter = batch.queue().map(String::from).is_ok_and(|name| bindings::is_dead_letter_queue(&name));
    let messages: Array = batch.messages().unwrap_or_else(|_| Array::new());
    let handled = messages.iter().map(|raw| {
        let services = &services;
        async move {
            let message: Message = raw.unchecked_into();
            // `attempts` is on every message the runtime hands over; workers-rs 0.8.7 has no getter for it.
            let attempts = Reflect::get(&message, &JsValue::from_str("attempts")).ok().and_then(|a| a.as_f64());
            let attempt = attempts.map_or(1, |a| a.clamp(1.0, f64::from(u32::MAX)) as u32);
            let body = message
                .body()
                .ok()
                .and_then(|b| worker::js_sys::JSON::stringify(&b).ok())
                .and_then(|s| s.as_string())
                .and_then(|s| serde_json::from_str::<store::outbox::DeliveryMessage>(&s).ok());
            let action = match body {
                None => {
                    worker::console_error!("an events message that is not a delivery was dropped");
                    QueueAction::Ack
                }
                Some(m) if dead_letter => events::consumer::dead_lettered(services, &m).await,
                Some(m) => events::consumer::deliver(services, &m, attempt).await,
            };
            let _ = match action {
                QueueAction::Ack => message.ack(),
                QueueAction::Retry { delay_s } => message.retry(retry_options(delay_s)),
                // Retried past the consumer's max_retries, the queue moves it to the dead-letter queue.
                QueueAction::DeadLetter => message.retry(retry_options(0)),
            };
        }
    });
    futures_util::future::join_all(handled).await;

    fn retry_options(delay_s: u32) -> JsValue {
        let options = worker::js_sys::Object::new();
        let _ = Reflect::set(&options, &JsValue::from_str("delaySeconds"), &JsValue::from(delay_s));
        options.into()
    }
}

/// The queue export, written out rather than with `#[event(queue)]`:
/// workers-rs 0.8.7 hides each message's `attempts`, which the retry
/// schedule counts on, and its generated glue panics (trapping the wasm
/// instance) when a handler returns an error. worker-build wires any export
/// named `queue` into the module's entry point.
mod queue_export {
    use worker::wasm_bindgen::prelude::wasm_bindgen;
    use worker::wasm_bindgen::JsValue;

    #[wasm_bindgen(
        wasm_bindgen = ::worker::wasm_bindgen,
        wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
        js_sys = ::worker::js_sys
    )]
    pub async fn queue(
        batch: ::worker::worker_sys::MessageBatch,
        env: ::worker::Env,
        _ctx: ::worker::worker_sys::Context,
    ) -> Result<JsValue, JsValue> {
        super::consume(batch, env).await;
        Ok(JsValue::UNDEFINED)
    }
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
