//! The whole route table, public and admin, in one screen: each route with
//! the methods it answers and who may call it. Pure: resolving a path is
//! unit-tested on the host; `http::dispatch` enforces the access and calls
//! the handler with the authenticated principal.

use worker::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    WidgetScript,
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

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(route(Method::Get, "/"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/api/images"), Err(RouteError::NotFound));
        assert_eq!(route(Method::Get, "/admin/clients/a/b/c/d"), Err(RouteError::NotFound));
    }
}
