//! End-to-end tests: the real worker in `wrangler dev` (local D1, KV, Durable
//! Objects, Queues) against the FAL emulator, driven over HTTP like a shop would.

mod support;

mod admin_auth;
mod browser;
mod callbacks;
mod clients;
mod contract;
mod cors;
mod deliveries;
mod dashboard;
mod durability;
mod environments;
mod fault_matrix;
mod forged_keys;
mod generate;
mod generations;
mod hardening;
mod idempotency;
mod jobs;
mod limits;
mod live_jobs;
mod login_throttle;
mod maintenance;
mod placement;
mod metrics;
mod production;
mod restart;
mod results;
mod routing;
mod time_passing;
mod webhooks;
mod widget_credentials;
