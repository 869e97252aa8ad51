//! Typed request helpers. Each helper takes the status it expects and checks
//! it itself, so a test reads as the behaviour it specifies.

use super::stack::{self, Stack, ADMIN_PASSWORD};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error reply: status, JSON shape and code.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "expected {status} {code}, got {}: {}", self.status, self.text);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
        let message = self.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "an error needs a message: {}", self.text);
        self
    }
}

/// One request: method, path, headers, optional body.
pub struct Call<'a> {
    api: &'a Api,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    raw_headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A header whose value is raw bytes (not necessarily ASCII), as an
    /// attacker could send it.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.raw_headers.push((name.into(), value.to_vec()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self.header("content-type", content_type)
    }

    pub async fn send(self) -> Reply {
        let mut req = self.api.http.request(self.method, format!("{}{}", self.api.base, self.path));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        for (k, v) in &self.raw_headers {
            req = req.header(k, reqwest::header::HeaderValue::from_bytes(v).expect("a header value"));
        }
        if let Some(body) = self.body {
            req = req.body(body);
        }
        let resp = req.send().await.expect("the worker answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    /// Sends and asserts the status; returns the JSON body.
    pub async fn expect(self, status: u16) -> Value {
        let reply = self.send().await;
        assert_eq!(reply.status, status, "unexpected status; body: {}", reply.text);
        reply.body
    }
}

impl Api {
    pub fn new(stack: &Stack) -> Self {
        Self::at(&stack.base)
    }

    /// The worker at `base` (`http://127.0.0.1:port`).
    pub fn at(base: &str) -> Self {
        Self { base: base.to_string(), http: reqwest::Client::new() }
    }

    pub fn shared() -> Self {
        Self::new(stack::shared())
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call { api: self, method, path: path.to_string(), headers: Vec::new(), raw_headers: Vec::new(), body: None }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub async fn login(&self) -> Admin {
        self.login_with(self.post("/admin/login")).await
    }

    /// Logs in at `now_ms` on the test clock, so the session's expiry and
    /// idle timeout count from a known instant.
    pub async fn login_at(&self, now_ms: u64) -> Admin {
        self.login_with(self.post("/admin/login").header("x-test-now", &now_ms.to_string())).await
    }

    async fn login_with(&self, call: Call<'_>) -> Admin {
        let reply = call.json(&json!({ "password": ADMIN_PASSWORD })).send().await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.text);
        let cookie = reply.header("set-cookie").expect("login sets a cookie");
        let pair = cookie.split(';').next().unwrap().to_string();
        Admin { api: self.clone(), cookie: pair }
    }
}

/// A logged-in admin.
pub struct Admin {
    pub api: Api,
    /// `name=value` for the `Cookie` header.
    pub cookie: String,
}

impl Admin {
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        self.api.call(method, path).header("cookie", &self.cookie)
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub async fn create_client(&self, body: Value) -> TestClient {
        let created = self.post("/admin/clients").json(&body).expect(201).await;
        TestClient {
            api: self.api.clone(),
            id: created["client"]["id"].as_str().unwrap().to_string(),
            key: created["api_key"].as_str().unwrap().to_string(),
            created,
        }
    }

    /// A client with a unique name and otherwise default settings.
    pub async fn new_client(&self) -> TestClient {
        self.create_client(json!({ "name": format!("Shop {}", super::marker()) })).await
    }

    /// A new client whose callbacks go to `url`; returns it and its signing secret.
    pub async fn client_with_callbacks(&self, url: &str, settings: Value) -> (TestClient, String) {
        let client = self.new_client().await;
        let mut body = settings;
        body["webhook_url"] = json!(url);
        let updated = self.patch(&format!("/admin/clients/{}", client.id)).json(&body).expect(200).await;
        let secret = updated["webhook_secret"].as_str().expect("the secret is shown once").to_string();
        (client, secret)
    }

    /// One page of a client's delivery log (`query` without the `?`).
    pub async fn deliveries(&self, client_id: &str, query: &str) -> Vec<Value> {
        let page = self.get(&format!("/admin/clients/{client_id}/deliveries?{query}")).expect(200).await;
        page["data"].as_array().unwrap().clone()
    }

    /// Polls a client's delivery log until `done` holds (or panics after `secs`).
    pub async fn wait_for_log(&self, client_id: &str, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let log = self.deliveries(client_id, "limit=100").await;
            if done(&log) {
                return log;
            }
            assert!(std::time::Instant::now() < deadline, "the delivery log never got there: {log:#?}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Every item of a paginated list, following `next_cursor` to the end.
pub async fn all_pages<'a>(page: impl Fn(&str) -> Call<'a>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let body = page(&cursor).expect(200).await;
        out.extend(body["data"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
}

/// A client as the shop developer uses it: its API key.
#[derive(Clone)]
pub struct TestClient {
    pub api: Api,
    pub id: String,
    pub key: String,
    pub created: Value,
}

impl TestClient {
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        self.api.call(method, path).header("x-api-key", &self.key)
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub fn generate(&self, body: &Value) -> Call<'_> {
        self.post("/api/images/generate").json(body)
    }

    /// `GET /api/usage` at `now_ms` on the test clock.
    pub async fn usage_at(&self, now_ms: u64) -> Value {
        self.get("/api/usage").header("x-test-now", &now_ms.to_string()).expect(200).await
    }

    /// Waits until every generation of this client has been settled by its
    /// limiter (settling happens just after the response, in the background).
    pub async fn wait_until_settled(&self) -> Value {
        super::wait_until("every generation settled", std::time::Duration::from_secs(10), || async {
            let usage = self.get("/api/usage").expect(200).await;
            if usage["in_progress"] == 0 { Ok(usage) } else { Err(usage.to_string()) }
        })
        .await
    }

    /// Waits until this client's usage, read at `now_ms`, satisfies `done`.
    pub async fn wait_for_usage_at(&self, now_ms: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        super::wait_until(what, std::time::Duration::from_secs(10), || async {
            let usage = self.usage_at(now_ms).await;
            if done(&usage) { Ok(usage) } else { Err(usage.to_string()) }
        })
        .await
    }

    /// All of this client's generations (following cursors).
    pub async fn history(&self) -> Vec<Value> {
        all_pages(|cursor| self.get(&format!("/api/generations?limit=100&cursor={cursor}"))).await
    }
}
