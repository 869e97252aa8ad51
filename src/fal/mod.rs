//! FAL: the model registry (pure) and the HTTP client (glue).

pub mod client;
pub mod jwks;
pub mod models;
pub mod webhook;
