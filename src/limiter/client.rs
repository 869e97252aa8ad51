//! The worker's side of the limiter: one JSON call per decision.

use super::policy::{AdmitRequest, ClientSnapshot, Decision};
use super::protocol::{LoginReply, LoginRequest, SettleRequest, SyncRequest};
use crate::domain::ids::ClientId;
use crate::error::{ApiError, ApiResult};
use crate::outbound::body_text;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use worker::{Env, Headers, Method, ObjectNamespace, Request, RequestInit};

pub const BINDING: &str = "RATE_LIMITER";

pub struct Limiter {
    namespace: ObjectNamespace,
}

impl Limiter {
    pub fn new(env: &Env) -> ApiResult<Self> {
        Ok(Self { namespace: env.durable_object(BINDING)? })
    }

    async fn call<T: DeserializeOwned>(&self, object: &str, path: &str, body: &impl Serialize) -> ApiResult<T> {
        let stub = self.namespace.id_from_name(object)?.get_stub()?;
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&serde_json::to_string(body)?)));
        let request = Request::new_with_init(&format!("https://limiter{path}"), &init)?;
        let response = stub.fetch_with_request(request).await?;
        let status = response.status_code();
        let text = body_text(response).await?;
        if status != 200 {
            return Err(ApiError::Internal(format!("limiter {path} answered {status}: {text}")));
        }
        Ok(serde_json::from_str(&text)?)
    }

    pub async fn admit(&self, client: &ClientId, request: &AdmitRequest) -> ApiResult<Decision> {
        self.call(client.as_str(), "/admit", request).await
    }

    pub async fn settle(&self, client: &ClientId, request: &SettleRequest) -> ApiResult<()> {
        let _: serde_json::Value = self.call(client.as_str(), "/settle", request).await?;
        Ok(())
    }

    /// Replaces the object's copy of the client (after any admin change).
    pub async fn sync(&self, snapshot: ClientSnapshot) -> ApiResult<()> {
        let name = snapshot.client_id.clone();
        let _: serde_json::Value = self.call(&name, "/sync", &SyncRequest { snapshot }).await?;
        Ok(())
    }

    pub async fn login(&self, scope: &str, request: &LoginRequest) -> ApiResult<LoginReply> {
        self.call(&format!("login:{scope}"), "/login", request).await
    }
}
