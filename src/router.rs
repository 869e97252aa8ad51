//! The whole route table, public and admin, in one screen: each route with
//! the methods it answers and who may call it. Pure: resolving a path is
//! unit-tested on the host; `http::dispatch` enforces the access and calls
//! the handler with the authenticated principal.

use worker::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    WidgetScript,
    OpenApi,
    Generate,
    ListGenerations,
    Usage,
    CreateJob,
    GetJob(String),
    CancelJob(String),
    JobEvents(String),
    WidgetSession,
    ShopperHistory,
    EraseShopper(String),
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
    AdminClientShoppers(String),
    AdminDeleteClient(String),
    ResultImage(String),
    ListDeliveries,
    AdminClientDeliveries(String),
    AdminRedeliver(String),
    AdminResumeCallbacks(String),
}

/// Who may call a route; `http::dispatch` checks it before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the dashboard's static files: the page checks the session itself).
    Public,
    /// A client's secret key (its servers); the handler receives the `ApiClient`.
    SecretKey,
    /// Any client credential: a secret key, or a browser's (publishable key
    /// with its shopper, widget session token), which acts for one shopper.
    ClientKey,
    /// A browser credential only: what it sees is its shopper's.
    ShopperKey,
    /// An admin session; the handler receives the `AdminSession`.
    Admin,
    /// An admin session on a request from our own pages (no cross-site writes).
    AdminWrite,
    /// No session yet, but only from our own pages (login, logout).
    SameOrigin,
    /// FAL's webhook: its Ed25519 signature, verified before the handler runs.
    FalSignature,
    /// A result image: the URL's own signature and expiry, verified before the handler runs.
    ResultSignature,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed(Vec<&'static str>),
}

pub fn resolve(method: &Method, path: &str) -> Result<(Route, Access), RouteError> {
    use Access::{Admin, AdminWrite, ClientKey, FalSignature, Public, ResultSignature, SameOrigin, SecretKey, ShopperKey};
    use Method::{Delete, Get, Patch, Post};
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let id = |s: &&str| s.to_string();
    let choices: Vec<(Method, Route, Access)> = match segments.as_slice() {
        ["health"] => vec![(Get, Route::Health, Public)],
        ["openapi.json"] => vec![(Get, Route::OpenApi, Public)],
        ["widget.js"] => vec![(Get, Route::WidgetScript, Public)],
        ["api", "images", "generate"] => vec![(Post, Route::Generate, ClientKey)],
        ["api", "generations"] => vec![(Get, Route::ListGenerations, SecretKey)],
        ["api", "usage"] => vec![(Get, Route::Usage, SecretKey)],
        ["api", "jobs"] => vec![(Post, Route::CreateJob, ClientKey)],
        ["api", "jobs", job] => vec![(Get, Route::GetJob(id(job)), ClientKey), (Delete, Route::CancelJob(id(job)), ClientKey)],
        ["api", "jobs", job, "events"] => vec![(Get, Route::JobEvents(id(job)), ClientKey)],
        ["api", "widget-sessions"] => vec![(Post, Route::WidgetSession, SecretKey)],
        ["api", "shoppers", "me", "generations"] => vec![(Get, Route::ShopperHistory, ShopperKey)],
        ["api", "shoppers", shopper] => vec![(Delete, Route::EraseShopper(id(shopper)), SecretKey)],
        ["api", "webhooks", "fal"] => vec![(Post, Route::FalWebhook, FalSignature)],
        ["v1", "results", generation] => vec![(Get, Route::ResultImage(id(generation)), ResultSignature)],
        ["api", "deliveries"] => vec![(Get, Route::ListDeliveries, SecretKey)],
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
            (Delete, Route::AdminDeleteClient(id(client)), AdminWrite),
        ],
        ["admin", "clients", client, "stats"] => vec![(Get, Route::AdminClientStats(id(client)), Admin)],
        ["admin", "clients", client, "metrics"] => vec![(Get, Route::AdminClientMetrics(id(client)), Admin)],
        ["admin", "clients", client, "shoppers"] => vec![(Get, Route::AdminClientShoppers(id(client)), Admin)],
        ["admin", "clients", client, "keys"] => vec![(Post, Route::AdminRotateKey(id(client)), AdminWrite)],
        ["admin", "clients", client, "keys", key] => vec![(
            Delete,
            Route::AdminRevokeKey { client_id: id(client), key_id: id(key) },
            AdminWrite,
        )],
        ["admin", "clients", client, "webhook-secret"] => vec![(Post, Route::AdminRotateWebhookSecret(id(client)), AdminWrite)],
        ["admin", "clients", client, "deliveries"] => vec![(Get, Route::AdminClientDeliveries(id(client)), Admin)],
        ["admin", "clients", client, "callbacks", "resume"] => {
            vec![(Post, Route::AdminResumeCallbacks(id(client)), AdminWrite)]
        }
        ["admin", "deliveries", delivery, "redeliver"] => vec![(Post, Route::AdminRedeliver(id(delivery)), AdminWrite)],
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
        assert_eq!(resolve(&Method::Post, "/api/images/generate"), Ok((Route::Generate, Access::ClientKey)));
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
        assert_eq!(resolve(&Method::Delete, "/admin/clients/cl_1"), Ok((Route::AdminDeleteClient("cl_1".into()), Access::AdminWrite)));
    }

    #[test]
    fn result_images_are_served_to_whoever_holds_a_signed_url() {
        assert_eq!(resolve(&Method::Get, "/v1/results/gen_1"), Ok((Route::ResultImage("gen_1".into()), Access::ResultSignature)));
        assert_eq!(resolve(&Method::Head, "/v1/results/gen_1").map(|(_, a)| a), Ok(Access::ResultSignature));
        assert_eq!(route(Method::Delete, "/v1/results/gen_1"), Err(RouteError::MethodNotAllowed(vec!["GET"])));
    }

    #[test]
    fn browsers_may_only_try_on_and_follow_their_shoppers_work() {
        let access = |m: Method, p: &str| resolve(&m, p).map(|(_, a)| a);
        for (m, p) in [(Method::Post, "/api/jobs"), (Method::Post, "/api/images/generate"), (Method::Get, "/api/jobs/job_1"), (Method::Get, "/api/jobs/job_1/events"), (Method::Delete, "/api/jobs/job_1")] {
            assert_eq!(access(m, p), Ok(Access::ClientKey), "{p}");
        }
        for (m, p) in [(Method::Get, "/api/generations"), (Method::Get, "/api/usage"), (Method::Post, "/api/widget-sessions"), (Method::Delete, "/api/shoppers/cust-1")] {
            assert_eq!(access(m, p), Ok(Access::SecretKey), "{p}");
        }
        assert_eq!(access(Method::Get, "/api/shoppers/me/generations"), Ok(Access::ShopperKey));
    }

    #[test]
    fn delivery_routes_are_a_shops_read_and_admin_reads_and_writes() {
        assert_eq!(resolve(&Method::Get, "/api/deliveries"), Ok((Route::ListDeliveries, Access::SecretKey)));
        assert_eq!(
            resolve(&Method::Get, "/admin/clients/cl_1/deliveries"),
            Ok((Route::AdminClientDeliveries("cl_1".into()), Access::Admin))
        );
        assert_eq!(
            resolve(&Method::Post, "/admin/deliveries/dlv_1/redeliver"),
            Ok((Route::AdminRedeliver("dlv_1".into()), Access::AdminWrite))
        );
        assert_eq!(
            resolve(&Method::Post, "/admin/clients/cl_1/callbacks/resume"),
            Ok((Route::AdminResumeCallbacks("cl_1".into()), Access::AdminWrite))
        );
        assert_eq!(route(Method::Get, "/admin/deliveries/dlv_1/redeliver"), Err(RouteError::MethodNotAllowed(vec!["POST"])));
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
            Route::WidgetScript => (Get, "/widget.js", "/widget.js"),
            Route::JobEvents(_) => (Get, "/api/jobs/{job_id}/events", "/api/jobs/j1/events"),
            Route::WidgetSession => (Post, "/api/widget-sessions", "/api/widget-sessions"),
            Route::ShopperHistory => (Get, "/api/shoppers/me/generations", "/api/shoppers/me/generations"),
            Route::EraseShopper(_) => (Delete, "/api/shoppers/{shopper_id}", "/api/shoppers/s1"),
            Route::ResultImage(_) => (Get, "/v1/results/{generation_id}", "/v1/results/g1"),
            Route::ListDeliveries => (Get, "/api/deliveries", "/api/deliveries"),
            Route::AdminDeleteClient(_) => (Delete, "/admin/clients/{client_id}", "/admin/clients/c1"),
            Route::AdminClientShoppers(_) => (Get, "/admin/clients/{client_id}/shoppers", "/admin/clients/c1/shoppers"),
            Route::AdminClientDeliveries(_) => (Get, "/admin/clients/{client_id}/deliveries", "/admin/clients/c1/deliveries"),
            Route::AdminRedeliver(_) => (Post, "/admin/deliveries/{delivery_id}/redeliver", "/admin/deliveries/d1/redeliver"),
            Route::AdminResumeCallbacks(_) => (Post, "/admin/clients/{client_id}/callbacks/resume", "/admin/clients/c1/callbacks/resume"),
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
            Route::WidgetScript, Route::JobEvents("j1".into()), Route::WidgetSession, Route::ShopperHistory,
            Route::EraseShopper("s1".into()), Route::ResultImage("g1".into()), Route::ListDeliveries,
            Route::AdminDeleteClient(c()), Route::AdminClientShoppers(c()), Route::AdminClientDeliveries(c()),
            Route::AdminRedeliver("d1".into()), Route::AdminResumeCallbacks(c()),
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
                // Every GET route answers HEAD; the document lists HEAD where it matters (result images).
                "HEAD" => Method::Head,
                other => panic!("unexpected method {other} for {template}"),
            };
            let resolved = resolve(&method, &sample_of(&template));
            assert!(resolved.is_ok(), "{} {template} is documented but not routed: {resolved:?}", method_name(&method));
            let (route, _) = resolved.unwrap();
            assert_eq!(documented(&route).1, template, "{template} resolves to {route:?}, documented elsewhere");
        }
    }

    /// OpenAPI keys a parameter by name and location; the meta-schema does
    /// not check that, and a repeated one is silently ambiguous.
    #[test]
    fn no_documented_operation_declares_a_parameter_twice() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../assets/openapi.json")).unwrap();
        let resolve_ref = |p: &serde_json::Value| match p["$ref"].as_str() {
            Some(r) => doc.pointer(r.trim_start_matches('#')).cloned().unwrap_or_default(),
            None => p.clone(),
        };
        for (path, item) in doc["paths"].as_object().unwrap() {
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters") {
                let own = op["parameters"].as_array().cloned().unwrap_or_default();
                let mut seen = std::collections::BTreeSet::new();
                for p in shared.iter().chain(own.iter()).map(resolve_ref) {
                    let key = (p["name"].as_str().unwrap_or_default().to_ascii_lowercase(), p["in"].as_str().unwrap_or_default().to_string());
                    assert!(seen.insert(key.clone()), "{method} {path} declares {key:?} twice");
                }
            }
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(route(Method::Get, "/"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/api/images"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/admin/clients/a/b/c/d"), Err(RouteError::NotFound));
    }
}
