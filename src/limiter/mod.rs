//! Per-client rate limits, monthly quota and concurrency, and admin-login
//! throttling: pure policy (host-tested), the Durable Object, and the
//! worker's client for it.

pub mod client;
pub mod headers;
pub mod object;
pub mod policy;
pub mod protocol;
