//! What a request works with: the services built once, at the entry point,
//! from the worker's bindings (`Env`), plus the request's own clock and the
//! figures its response headers will report. Nothing after the entry points
//! reads `Env`.

use crate::bindings;
use crate::config::Config;
use crate::fal::client::Fal;
use crate::limiter::client::{Limiter, LoginLimiter};
use crate::limiter::protocol::LimitStatus;
use crate::store::jobs::JobStore;
use crate::store::results::ResultBucket;
use crate::store::outbox::EventQueue;
use std::cell::RefCell;
use std::future::Future;
use std::ops::Deref;
use std::rc::Rc;
use worker::{Context, D1Database, Date, Env};

/// The typed services: settings, storage, the limiter objects, FAL. Shared
/// (`Rc`) with background work that outlives the response.
pub struct Services {
    pub config: Rc<Config>,
    pub fal: Fal,
    pub db: D1Database,
    pub jobs: JobStore,
    pub limiter: Limiter,
    pub login: LoginLimiter,
    /// Generations' output images (R2).
    pub results: ResultBucket,
    /// Outbound events (callbacks, metrics forwarding), delivered by the queue consumer.
    pub events: EventQueue,
}

impl Services {
    pub fn from_env(env: &Env, config: Rc<Config>) -> worker::Result<Self> {
        Ok(Self {
            fal: Fal::new(config.fal.clone()),
            jobs: JobStore::new(bindings::jobs(env)?, config.emulate_kv_write_limit),
            db: bindings::database(env)?,
            config,
            limiter: Limiter::new(bindings::rate_limiters(env)?),
            login: LoginLimiter::new(bindings::login_throttles(env)?),
            results: ResultBucket::new(bindings::results(env)?),
            events: EventQueue::new(bindings::events(env)?),
        })
    }
}

/// One request: the services, work that may outlive the response
/// (`waitUntil`), the request's clock, and what the response headers report.
/// Cloning shares all of it, so work handed to `waitUntil` can own a `Ctx`.
#[derive(Clone)]
pub struct Ctx {
    pub services: Rc<Services>,
    pub wait: Rc<Context>,
    /// Milliseconds since the epoch for this request (see `Config::test_clock`).
    pub now: u64,
    limits: Rc<RefCell<Option<LimitStatus>>>,
    timings: Rc<RefCell<Vec<(&'static str, u64)>>>,
    /// The origin the request came to, for links when `PUBLIC_BASE_URL` is unset.
    origin: Rc<RefCell<String>>,
}

impl Deref for Ctx {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl Ctx {
    pub fn new(services: Rc<Services>, wait: Context, now: u64) -> Self {
        Self { services, wait: Rc::new(wait), now, limits: Rc::default(), timings: Rc::default(), origin: Rc::default() }
    }

    /// The same request, later: background work that outlives the response
    /// moves the request's clock on by the real time that has passed.
    pub fn later(&self, started_ms: u64) -> Self {
        Self { now: self.now + Date::now().as_millis().saturating_sub(started_ms), ..self.clone() }
    }

    pub fn set_origin(&self, origin: String) {
        *self.origin.borrow_mut() = origin;
    }

    /// Where our own links point: `PUBLIC_BASE_URL`, else the request's origin.
    pub fn public_base(&self) -> String {
        self.config.public_base_url.clone().unwrap_or_else(|| self.origin.borrow().clone())
    }

    /// Runs `work` after (or beside) the response, for as long as the
    /// platform keeps the request's background work alive.
    pub fn in_background(&self, work: impl Future<Output = ()> + 'static) {
        self.wait.wait_until(work);
    }

    /// Runs `work` so that it completes even if the client disconnects, and
    /// waits for its result. On Cloudflare a request's own work is canceled
    /// when its client goes away, "unless you call waitUntil() to extend
    /// execution by up to 30 seconds"
    /// (https://developers.cloudflare.com/workers/platform/limits/#duration);
    /// work that is recorded only at its end (a generation's row, its
    /// settlement) must therefore not be the request's own.
    pub async fn detached<T: 'static>(&self, work: impl Future<Output = T> + 'static) -> Option<T> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.in_background(async move {
            let _ = tx.send(work.await);
        });
        rx.await.ok()
    }

    /// The client's limits after this request's decision, for the headers.
    pub fn set_limits(&self, limits: LimitStatus) {
        *self.limits.borrow_mut() = Some(limits);
    }

    pub fn limits(&self) -> Option<LimitStatus> {
        self.limits.borrow().clone()
    }

    /// `Server-Timing` entries: each name once, with its total milliseconds.
    pub fn timings(&self) -> Vec<(&'static str, u64)> {
        self.timings.borrow().clone()
    }

    /// Awaits `work`, adding its duration to `Server-Timing` under `name`.
    pub async fn timed<T>(&self, name: &'static str, work: impl Future<Output = T>) -> T {
        let started = Date::now().as_millis();
        let out = work.await;
        let elapsed = Date::now().as_millis().saturating_sub(started);
        let mut timings = self.timings.borrow_mut();
        match timings.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += elapsed,
            None => timings.push((name, elapsed)),
        }
        out
    }
}
