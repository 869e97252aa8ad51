//! The worker's side of the limiter objects: one JSON call per decision.

use super::jobs::JobState;
use super::protocol::{
    AdmitRequest, Decision, JobCreate, JobFinish, JobFinished, JobGet, JobProgress, JobSubscribe, LoginReply, LoginRequest, SettleRequest,
    ShopperErase, SyncRequest, FOLLOW_HEADER,
};
use super::login::{LoginCall, LoginVerdict};
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

    pub async fn create_job(&self, client: &ClientId, request: &JobCreate) -> ApiResult<JobState> {
        call(&self.namespace, client.as_str(), "/jobs/create", request).await
    }

    pub async fn job(&self, client: &ClientId, id: &str) -> ApiResult<Option<JobState>> {
        call(&self.namespace, client.as_str(), "/jobs/get", &JobGet { id: id.to_string() }).await
    }

    pub async fn job_progress(&self, client: &ClientId, request: &JobProgress) -> ApiResult<Option<JobState>> {
        call(&self.namespace, client.as_str(), "/jobs/progress", request).await
    }

    pub async fn finish_job(&self, client: &ClientId, request: &JobFinish) -> ApiResult<JobFinished> {
        call(&self.namespace, client.as_str(), "/jobs/finish", request).await
    }

    /// The job's status stream (a streaming response), and whether this
    /// caller was chosen to follow FAL's own status stream for it. `None`
    /// when the object does not have the job.
    pub async fn subscribe(&self, client: &ClientId, request: &JobSubscribe) -> ApiResult<Option<(worker::Response, bool)>> {
        let response = send(&self.namespace, client.as_str(), "/jobs/subscribe", request).await?;
        match response.status_code() {
            200 => {
                let follow = response.headers().get(FOLLOW_HEADER).ok().flatten().as_deref() == Some("1");
                Ok(Some((response, follow)))
            }
            404 => Ok(None),
            status => Err(ApiError::Internal(format!("limiter /jobs/subscribe answered {status}"))),
        }
    }

    /// Forgets a shopper's live jobs and counters; returns the ids of the jobs.
    pub async fn erase_shopper(&self, client: &ClientId, shopper: &str) -> ApiResult<Vec<String>> {
        call(&self.namespace, client.as_str(), "/shoppers/erase", &ShopperErase { shopper_id: shopper.to_string() }).await
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
    let response = send(namespace, object, path, body).await?;
    let status = response.status_code();
    let text = body_text(response).await?;
    if status != 200 {
        return Err(ApiError::Internal(format!("limiter {path} answered {status}: {text}")));
    }
    Ok(serde_json::from_str(&text)?)
}

async fn send(namespace: &ObjectNamespace, object: &str, path: &str, body: &impl Serialize) -> ApiResult<worker::Response> {
    let stub = namespace.id_from_name(object)?.get_stub()?;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(JsValue::from_str(&serde_json::to_string(body)?)));
    let request = Request::new_with_init(&format!("https://limiter{path}"), &init)?;
    Ok(stub.fetch_with_request(request).await?)
}
