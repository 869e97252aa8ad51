//! The worker's bindings, by name: the one place a binding's name appears
//! (they must match wrangler.toml). Entry points turn them into services.

use worker::{Bucket, D1Database, Env, ObjectNamespace};

const DB: &str = "DB";
const JOBS: &str = "JOBS";
const RATE_LIMITER: &str = "RATE_LIMITER";
const LOGIN_THROTTLE: &str = "LOGIN_THROTTLE";
const RESULTS: &str = "RESULTS";

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
