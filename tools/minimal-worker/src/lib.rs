//! The smallest worker workers-rs can make that answers `/health` the way
//! ours does (JSON `{"status":"ok"}`, 200): the `#[event(fetch)]` glue, the
//! request converted to `worker::Request`, a `worker::Response` built and
//! converted back. The benchmark runs it next to a plain JavaScript worker to
//! measure what the Rust entry itself costs, before any of our code runs.
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/health" => Response::from_json(&serde_json::json!({ "status": "ok" })),
        _ => Response::error("not found", 404),
    }
}
