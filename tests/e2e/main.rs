//! End-to-end tests: the real worker in `wrangler dev` (local D1, KV, Durable
//! Objects) against the FAL emulator, driven over HTTP like a shop would.

mod support;

mod admin_auth;
mod browser;
mod callbacks;
mod clients;
mod cors;
mod dashboard;
mod durability;
mod generate;
mod generations;
mod idempotency;
mod jobs;
mod limits;
mod maintenance;
mod metrics;
mod production;
mod restart;
mod routing;
mod time_passing;
mod webhooks;
