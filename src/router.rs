//! The whole route table, public and admin, in one screen: each route with
//! the methods it answers and who may call it. Pure: resolving a path is
//! unit-tested on the host; `http::dispatch` enforces the access and calls
//! the handler with the authenticated principal.

use worker::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    Generate,
    ListGenerations,
    Usage,
    CreateJob,
    GetJob(String),
    CancelJob(String),
    FalWebhook,
    AdminPage,
    AdminAsset(String),
    AdminLogin,
    AdminLogout,
    AdminSession,
    AdminListClients,
    AdminCreateClient,
    AdminGetClient(String),
    AdminUpdateClient(String),
    AdminRotateKey(String),
    AdminRotateWebhookSecret(String),
    AdminRevokeKey { client_id: String, key_id: String },
    AdminClientMetrics(String),
    AdminGenerations,
    AdminUsage,
    AdminOverview,
    AdminClientStats(String),
}

/// Who may call a route; `http::dispatch` checks it before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the dashboard's static files: the page checks the session itself).
    Public,
    /// A client's API key; the handler receives the `ApiClient`.
    ApiKey,
    /// An admin session; the handler receives the `AdminSession`.
    Admin,
    /// An admin session on a request from our own pages (no cross-site writes).
    AdminWrite,
    /// No session yet, but only from our own pages (login, logout).
    SameOrigin,
    /// FAL's webhook: its Ed25519 signature, verified before the handler runs.
    FalSignature,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed(Vec<&'static str>),
}

pub fn resolve(method: &Method, path: &str) -> Result<(Route, Access), RouteError> {
    use Access::{Admin, AdminWrite, ApiKey, FalSignature, Public, SameOrigin};
    use Method::{Delete, Get, Patch, Post};
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let id = |s: &&str| s.to_string();
    let choices: Vec<(Method, Route, Access)> = match segments.as_slice() {
        ["health"] => vec![(Get, Route::Health, Public)],
        ["openapi.json"] => vec![(Get, Route::OpenApi, Public)],
        ["api", "images", "generate"] => vec![(Post, Route::Generate, ApiKey)],
        ["api", "generations"] => vec![(Get, Route::ListGenerations, ApiKey)],
        ["api", "usage"] => vec![(Get, Route::Usage, ApiKey)],
        ["api", "jobs"] => vec![(Post, Route::CreateJob, ApiKey)],
        ["api", "jobs", job] => vec![(Get, Route::GetJob(id(job)), ApiKey), (Delete, Route::CancelJob(id(job)), ApiKey)],
        ["api", "webhooks", "fal"] => vec![(Post, Route::FalWebhook, FalSignature)],
        ["admin"] => vec![(Get, Route::AdminPage, Public)],
        ["admin", "assets", name] => vec![(Get, Route::AdminAsset(id(name)), Public)],
        ["admin", "login"] => vec![(Post, Route::AdminLogin, SameOrigin)],
        ["admin", "logout"] => vec![(Post, Route::AdminLogout, SameOrigin)],
        ["admin", "session"] => vec![(Get, Route::AdminSession, Admin)],
        ["admin", "overview"] => vec![(Get, Route::AdminOverview, Admin)],
        ["admin", "clients"] => vec![(Get, Route::AdminListClients, Admin), (Post, Route::AdminCreateClient, AdminWrite)],
        ["admin", "clients", client] => vec![
            (Get, Route::AdminGetClient(id(client)), Admin),
            (Patch, Route::AdminUpdateClient(id(client)), AdminWrite),
        ],
        ["admin", "clients", client, "stats"] => vec![(Get, Route::AdminClientStats(id(client)), Admin)],
        ["admin", "clients", client, "metrics"] => vec![(Get, Route::AdminClientMetrics(id(client)), Admin)],
        ["admin", "clients", client, "keys"] => vec![(Post, Route::AdminRotateKey(id(client)), AdminWrite)],
        ["admin", "clients", client, "keys", key] => vec![(
            Delete,
            Route::AdminRevokeKey { client_id: id(client), key_id: id(key) },
            AdminWrite,
        )],
        ["admin", "clients", client, "webhook-secret"] => vec![(Post, Route::AdminRotateWebhookSecret(id(client)), AdminWrite)],
        ["admin", "generations"] => vec![(Get, Route::AdminGenerations, Admin)],
        ["admin", "usage"] => vec![(Get, Route::AdminUsage, Admin)],
        _ => return Err(RouteError::NotFound),
    };
    let allowed: Vec<&'static str> = choices.iter().map(|(m, _, _)| method_name(m)).collect();
    choices
        .into_iter()
        .find(|(m, _, _)| m == method || (*method == Method::Head && *m == Get))
        .map(|(_, route, access)| (route, access))
        .ok_or(RouteError::MethodNotAllowed(allowed))
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Put => "PUT",
        _ => "OPTIONS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str) -> Result<Route, RouteError> {
        resolve(&method, path).map(|(r, _)| r)
    }

    #[test]
    fn resolves_public_and_admin_routes() {
        assert_eq!(resolve(&Method::Get, "/health"), Ok((Route::Health, Access::Public)));
        assert_eq!(resolve(&Method::Post, "/api/images/generate"), Ok((Route::Generate, Access::ApiKey)));
        assert_eq!(route(Method::Get, "/api/generations/"), Ok(Route::ListGenerations));
        assert_eq!(
            resolve(&Method::Delete, "/admin/clients/cl_1/keys/key_2"),
            Ok((Route::AdminRevokeKey { client_id: "cl_1".into(), key_id: "key_2".into() }, Access::AdminWrite))
        );
        assert_eq!(route(Method::Patch, "/admin/clients/cl_1"), Ok(Route::AdminUpdateClient("cl_1".into())));
    }

    #[test]
    fn admin_writes_need_our_own_origin_and_reads_a_session() {
        assert_eq!(resolve(&Method::Get, "/admin/clients").map(|(_, a)| a), Ok(Access::Admin));
        assert_eq!(resolve(&Method::Post, "/admin/clients").map(|(_, a)| a), Ok(Access::AdminWrite));
        assert_eq!(resolve(&Method::Post, "/admin/login").map(|(_, a)| a), Ok(Access::SameOrigin));
        assert_eq!(resolve(&Method::Post, "/api/webhooks/fal").map(|(_, a)| a), Ok(Access::FalSignature));
    }

    #[test]
    fn wrong_methods_list_what_the_path_accepts() {
        assert_eq!(route(Method::Get, "/api/images/generate"), Err(RouteError::MethodNotAllowed(vec!["POST"])));
        assert_eq!(route(Method::Put, "/admin/clients"), Err(RouteError::MethodNotAllowed(vec!["GET", "POST"])));
    }

    /// Every route with its documented method, OpenAPI path template and a
    /// path that should resolve to it. The match has no wildcard arm: a new
    /// `Route` does not compile until it is listed here, and the test below
    /// fails until `assets/openapi.json` documents it.
    fn documented(route: &Route) -> (Method, &'static str, &'static str) {
        use Method::{Delete, Get, Patch, Post};
        match route {
            Route::Health => (Get, "/health", "/health"),
            Route::OpenApi => (Get, "/openapi.json", "/openapi.json"),
            Route::Generate => (Post, "/api/images/generate", "/api/images/generate"),
            Route::ListGenerations => (Get, "/api/generations", "/api/generations"),
            Route::Usage => (Get, "/api/usage", "/api/usage"),
            Route::CreateJob => (Post, "/api/jobs", "/api/jobs"),
            Route::GetJob(_) => (Get, "/api/jobs/{job_id}", "/api/jobs/j1"),
            Route::CancelJob(_) => (Delete, "/api/jobs/{job_id}", "/api/jobs/j1"),
            Route::FalWebhook => (Post, "/api/webhooks/fal", "/api/webhooks/fal"),
            Route::AdminPage => (Get, "/admin", "/admin"),
            Route::AdminAsset(_) => (Get, "/admin/assets/{name}", "/admin/assets/a1"),
            Route::AdminLogin => (Post, "/admin/login", "/admin/login"),
            Route::AdminLogout => (Post, "/admin/logout", "/admin/logout"),
            Route::AdminSession => (Get, "/admin/session", "/admin/session"),
            Route::AdminListClients => (Get, "/admin/clients", "/admin/clients"),
            Route::AdminCreateClient => (Post, "/admin/clients", "/admin/clients"),
            Route::AdminGetClient(_) => (Get, "/admin/clients/{client_id}", "/admin/clients/c1"),
            Route::AdminUpdateClient(_) => (Patch, "/admin/clients/{client_id}", "/admin/clients/c1"),
            Route::AdminRotateKey(_) => (Post, "/admin/clients/{client_id}/keys", "/admin/clients/c1/keys"),
            Route::AdminRotateWebhookSecret(_) => (Post, "/admin/clients/{client_id}/webhook-secret", "/admin/clients/c1/webhook-secret"),
            Route::AdminRevokeKey { .. } => (Delete, "/admin/clients/{client_id}/keys/{key_id}", "/admin/clients/c1/keys/k1"),
            Route::AdminClientMetrics(_) => (Get, "/admin/clients/{client_id}/metrics", "/admin/clients/c1/metrics"),
            Route::AdminGenerations => (Get, "/admin/generations", "/admin/generations"),
            Route::AdminUsage => (Get, "/admin/usage", "/admin/usage"),
            Route::AdminOverview => (Get, "/admin/overview", "/admin/overview"),
            Route::AdminClientStats(_) => (Get, "/admin/clients/{client_id}/stats", "/admin/clients/c1/stats"),
        }
    }

    /// One value of every variant (ids as in the sample paths above).
    fn every_route() -> Vec<Route> {
        let (c, k) = (|| "c1".to_string(), || "k1".to_string());
        vec![
            Route::Health, Route::OpenApi, Route::Generate, Route::ListGenerations, Route::Usage, Route::CreateJob,
            Route::GetJob("j1".into()), Route::CancelJob("j1".into()), Route::FalWebhook, Route::AdminPage,
            Route::AdminAsset("a1".into()), Route::AdminLogin, Route::AdminLogout, Route::AdminSession,
            Route::AdminListClients, Route::AdminCreateClient, Route::AdminGetClient(c()), Route::AdminUpdateClient(c()),
            Route::AdminRotateKey(c()), Route::AdminRotateWebhookSecret(c()),
            Route::AdminRevokeKey { client_id: c(), key_id: k() }, Route::AdminClientMetrics(c()),
            Route::AdminGenerations, Route::AdminUsage, Route::AdminOverview, Route::AdminClientStats(c()),
        ]
    }

    fn document_operations() -> Vec<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../assets/openapi.json")).unwrap();
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys().filter(|m| *m != "parameters") {
                ops.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
        ops
    }

    /// `/admin/clients/{client_id}/keys` → `/admin/clients/x1/keys`.
    fn sample_of(template: &str) -> String {
        template.split('/').map(|seg| if seg.starts_with('{') { "x1" } else { seg }).collect::<Vec<_>>().join("/")
    }

    #[test]
    fn every_route_is_documented_in_the_openapi_document() {
        let ops = document_operations();
        let routes = every_route();
        for expected in &routes {
            let (method, template, sample) = documented(expected);
            assert_eq!(route(method.clone(), sample).as_ref(), Ok(expected), "{sample} does not resolve to {expected:?}");
            assert!(
                ops.contains(&(method_name(&method).to_string(), template.to_string())),
                "{expected:?} ({} {template}) is missing from assets/openapi.json",
                method_name(&method)
            );
        }
        // Every variant is in `every_route` (the count catches one forgotten there).
        let distinct: std::collections::BTreeSet<String> = routes.iter().map(|r| format!("{} {}", method_name(&documented(r).0), documented(r).1)).collect();
        assert_eq!(distinct.len(), routes.len());
    }

    #[test]
    fn every_documented_operation_is_a_route() {
        for (method, template) in document_operations() {
            let method = match method.as_str() {
                "GET" => Method::Get,
                "POST" => Method::Post,
                "PATCH" => Method::Patch,
                "DELETE" => Method::Delete,
                "PUT" => Method::Put,
                other => panic!("unexpected method {other} for {template}"),
            };
            let resolved = resolve(&method, &sample_of(&template));
            assert!(resolved.is_ok(), "{} {template} is documented but not routed: {resolved:?}", method_name(&method));
            let (route, _) = resolved.unwrap();
            assert_eq!(documented(&route).1, template, "{template} resolves to {route:?}, documented elsewhere");
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(route(Method::Get, "/"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/api/images"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/admin/clients/a/b/c/d"), Err(RouteError::NotFound));
    }
}
