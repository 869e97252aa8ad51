//! End-to-end tests: the real worker in `wrangler dev` (local D1, KV, Durable
//! Objects) against the FAL emulator, driven over HTTP like a shop would.

mod support;

mod admin_auth;
mod browser;
mod callbacks;
mod clients;
mod contract;
mod cors;
mod durability;
mod environments;
mod fault_matrix;
mod generate;
mod generations;
mod hardening;
mod idempotency;
mod jobs;
mod limits;
mod login_throttle;
mod maintenance;
mod metrics;
mod routing;
