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
        Self { base: stack.base.clone(), http: reqwest::Client::new() }
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
        let reply = self.post("/admin/login").json(&json!({ "password": ADMIN_PASSWORD })).send().await;
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

    pub fn generate(&self, body: &Value) -> Call<'_> {
        self.post("/api/images/generate").json(body)
    }

    /// Waits until every generation of this client has been settled by its
    /// limiter (settling happens just after the response, in the background).
    pub async fn wait_until_settled(&self) -> Value {
        for _ in 0..100 {
            let usage = self.get("/api/usage").expect(200).await;
            if usage["in_progress"] == 0 {
                return usage;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("generations of {} were never settled", self.id);
    }

    /// All of this client's generations (following cursors).
    pub async fn history(&self) -> Vec<Value> {
        all_pages(|cursor| self.get(&format!("/api/generations?limit=100&cursor={cursor}"))).await
    }
}
