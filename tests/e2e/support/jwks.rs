//! A stand-in for FAL's JWKS endpoint that records every fetch and can
//! publish new keys mid-test, to watch the worker's key cache.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Default)]
struct Inner {
    keys: Mutex<Vec<Value>>,
    fetches: Mutex<Vec<Instant>>,
}

pub struct JwksServer {
    url: String,
    inner: Arc<Inner>,
}

impl JwksServer {
    /// Serves the emulator's key, as FAL serves its own.
    pub fn start() -> Self {
        let inner = Arc::new(Inner::default());
        inner.keys.lock().unwrap().push(super::fal_webhooks::jwk(&super::fal_webhooks::emulator_key(), "emulator"));
        let app = Router::new().route("/jwks.json", get(serve)).with_state(inner.clone());
        let listener = super::stack::block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        super::stack::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// When each fetch arrived.
    pub fn fetches(&self) -> Vec<Instant> {
        self.inner.fetches.lock().unwrap().clone()
    }

    /// Adds `key` to the published set (as FAL does before signing with a new key).
    pub fn publish(&self, key: &SigningKey, kid: &str) {
        self.inner.keys.lock().unwrap().push(super::fal_webhooks::jwk(key, kid));
    }
}

async fn serve(State(inner): State<Arc<Inner>>) -> Json<Value> {
    inner.fetches.lock().unwrap().push(Instant::now());
    let keys = inner.keys.lock().unwrap().clone();
    Json(json!({ "keys": keys }))
}
