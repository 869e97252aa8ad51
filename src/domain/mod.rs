//! Pure Rust: everything here runs and is unit-tested on the host.

pub mod api_key;
pub mod callback;
pub mod capped_list;
pub mod client;
pub mod csv;
pub mod cursor;
pub mod event;
pub mod generation;
pub mod ids;
pub mod image;
pub mod input;
pub mod job;
pub mod result;
pub mod result_image;
pub mod result_url;
pub mod session;
pub mod shopper;
pub mod signing;
pub mod sse;
pub mod time;
pub mod widget_token;
