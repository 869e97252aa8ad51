//! Per-client limits and admin-login throttling: pure decisions (host-tested),
//! the Durable Objects that load, apply and persist them, and the worker's
//! client for those objects.
//!
//! - `admission`: access, then rate + quota + concurrency, all or none.
//! - `bucket`: the rate algorithm (the only file to change it).
//! - `quota`: monthly reservations, charged once; the concurrency cap.
//! - `idempotency`: `Idempotency-Key` ordering decisions.
//! - `jobs`: live job state (forward-only status, versions, FAL leases).
//! - `snapshot`: the client's copy of D1 and the access check.
//! - `login`: admin login throttling.
//! - `protocol`: the wire messages; `schema`: the objects' SQLite schemas.
//! - `object`, `login_object`: the Durable Objects; `client`: their stubs.

pub mod admission;
pub mod bucket;
pub mod client;
pub mod idempotency;
pub mod jobs;
pub mod login;
pub mod login_object;
pub mod object;
pub mod protocol;
pub mod quota;
pub mod schema;
pub mod snapshot;
pub mod streams;
pub mod widget;
