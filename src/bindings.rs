//! The worker's bindings, by name: the one place a binding's name appears
//! (they must match wrangler.toml). Entry points turn them into services.

use worker::{Bucket, D1Database, Env, ObjectNamespace, Queue};

const DB: &str = "DB";
const JOBS: &str = "JOBS";
const RATE_LIMITER: &str = "RATE_LIMITER";
const LOGIN_THROTTLE: &str = "LOGIN_THROTTLE";
const RESULTS: &str = "RESULTS";
const EVENTS: &str = "EVENTS";

pub fn database(env: &Env) -> worker::Result<D1Database> {
    env.d1(DB)
}

pub fn jobs(env: &Env) -> worker::Result<worker::kv::KvStore> {
    env.kv(JOBS)
}

pub fn rate_limiters(env: &Env) -> worker::Result<ObjectNamespace> {
    env.durable_object(RATE_LIMITER)
}

pub fn login_throttles(env: &Env) -> worker::Result<ObjectNamespace> {
    env.durable_object(LOGIN_THROTTLE)
}

/// The R2 bucket of generations' output images.
pub fn results(env: &Env) -> worker::Result<Bucket> {
    env.bucket(RESULTS)
}

/// The outbound events queue's producer (callbacks, metrics forwarding).
pub fn events(env: &Env) -> worker::Result<Queue> {
    env.queue(EVENTS)
}

/// Whether a batch comes from the events' dead-letter queue. Queue names
/// differ per environment (`tryon-events-dlq`, `tryon-events-dlq-staging`),
/// and only dead-letter queues carry `-dlq`.
pub fn is_dead_letter_queue(queue_name: &str) -> bool {
    queue_name.contains("-dlq")
}
