//! The admin API: sessions, clients and their keys, metrics, deliveries.

pub mod clients;
pub mod dashboard;
pub mod deliveries;
pub mod login_attempt;
pub mod metrics;
pub mod session;
pub mod usage;
