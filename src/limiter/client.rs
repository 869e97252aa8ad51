//! The worker's side of the limiter objects: one JSON call per decision.

use super::login::{LoginCall, LoginVerdict};
use super::protocol::{AdmitRequest, Decision, LoginReply, LoginRequest, SettleRequest, SyncRequest};
use super::snapshot::ClientSnapshot;
use crate::domain::ids::ClientId;
use crate::error::{ApiError, ApiResult};
use crate::outbound::body_text;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{Headers, Method, ObjectNamespace, Request, RequestInit};

/// The per-client `RateLimiter` objects.
#[derive(Clone)]
pub struct Limiter {
    namespace: ObjectNamespace,
}

impl Limiter {
    pub fn new(namespace: ObjectNamespace) -> Self {
        Self { namespace }
    }

    pub async fn admit(&self, client: &ClientId, request: &AdmitRequest) -> ApiResult<Decision> {
        call(&self.namespace, client.as_str(), "/admit", request).await
    }

    pub async fn settle(&self, client: &ClientId, request: &SettleRequest) -> ApiResult<()> {
        let _: serde_json::Value = call(&self.namespace, client.as_str(), "/settle", request).await?;
        Ok(())
    }

    /// Replaces the object's copy of the client (after any admin change).
    pub async fn sync(&self, snapshot: ClientSnapshot) -> ApiResult<()> {
        let name = snapshot.client_id.clone();
        let _: serde_json::Value = call(&self.namespace, &name, "/sync", &SyncRequest { snapshot }).await?;
        Ok(())
    }
}

/// The `LoginThrottle` objects: one per source, and `*` for all sources.
#[derive(Clone)]
pub struct LoginLimiter {
    namespace: ObjectNamespace,
}

impl LoginLimiter {
    pub fn new(namespace: ObjectNamespace) -> Self {
        Self { namespace }
    }

    /// Takes or gives back an attempt. An object still running the release
    /// before this protocol cannot read it and answers with an error; the
    /// caller then falls back to `legacy`.
    pub async fn attempt(&self, scope: &str, call_: &LoginCall) -> ApiResult<LoginVerdict> {
        call(&self.namespace, scope, "/attempt", call_).await
    }

    /// The previous release's check-then-record protocol, for the minutes
    /// (or the canary) during which an object runs the previous release.
    /// Remove a release after the one that introduced `/attempt`.
    pub async fn legacy(&self, scope: &str, request: &LoginRequest) -> ApiResult<LoginReply> {
        call(&self.namespace, scope, "/login", request).await
    }
}

async fn call<T: DeserializeOwned>(namespace: &ObjectNamespace, object: &str, path: &str, body: &impl Serialize) -> ApiResult<T> {
    let stub = namespace.id_from_name(object)?.get_stub()?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from_str(&serde_json::to_string(body)?)));
    let request = Request::new_with_init(&format!("https://limiter{path}"), &init)?;
    let response = stub.fetch_with_request(request).await?;
    let status = response.status_code();
    let text = body_text(response).await?;
    if status != 200 {
        return Err(ApiError::Internal(format!("limiter {path} answered {status}: {text}")));
    }
    Ok(serde_json::from_str(&text)?)
}
