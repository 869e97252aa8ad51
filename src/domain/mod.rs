//! Pure Rust: everything here runs and is unit-tested on the host.

pub mod api_key;
pub mod callback;
pub mod capped_list;
pub mod client;
pub mod csv;
pub mod cursor;
pub mod generation;
pub mod ids;
pub mod image;
pub mod input;
pub mod job;
pub mod session;
pub mod time;
