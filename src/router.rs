//! The whole route table, public and admin, in one screen. Pure: resolving a
//! path is unit-tested on the host; `http::dispatch` calls the handlers.

use worker::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    // Public API, authenticated by API key.
    Generate,
    ListGenerations,
    Usage,
    CreateJob,
    GetJob(String),
    CancelJob(String),
    /// FAL's webhook: authenticated by FAL's signature, not by API key.
    FalWebhook,
    // The dashboard page and its assets (the page checks the session itself).
    AdminPage,
    AdminAsset(String),
    // Admin API, authenticated by session cookie (except login).
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

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed(Vec<&'static str>),
}

pub fn resolve(method: &Method, path: &str) -> Result<Route, RouteError> {
    use Method::{Delete, Get, Patch, Post};
    let trimmed = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    let choices: Vec<(Method, Route)> = match segments.as_slice() {
        ["health"] => vec![(Get, Route::Health)],
        ["api", "images", "generate"] => vec![(Post, Route::Generate)],
        ["api", "generations"] => vec![(Get, Route::ListGenerations)],
        ["api", "usage"] => vec![(Get, Route::Usage)],
        ["api", "jobs"] => vec![(Post, Route::CreateJob)],
        ["api", "jobs", id] => vec![(Get, Route::GetJob(id.to_string())), (Delete, Route::CancelJob(id.to_string()))],
        ["api", "webhooks", "fal"] => vec![(Post, Route::FalWebhook)],
        ["admin"] => vec![(Get, Route::AdminPage)],
        ["admin", "assets", name] => vec![(Get, Route::AdminAsset(name.to_string()))],
        ["admin", "overview"] => vec![(Get, Route::AdminOverview)],
        ["admin", "clients", id, "stats"] => vec![(Get, Route::AdminClientStats(id.to_string()))],
        ["admin", "login"] => vec![(Post, Route::AdminLogin)],
        ["admin", "logout"] => vec![(Post, Route::AdminLogout)],
        ["admin", "session"] => vec![(Get, Route::AdminSession)],
        ["admin", "clients"] => vec![(Get, Route::AdminListClients), (Post, Route::AdminCreateClient)],
        ["admin", "clients", id] => vec![
            (Get, Route::AdminGetClient(id.to_string())),
            (Patch, Route::AdminUpdateClient(id.to_string())),
        ],
        ["admin", "clients", id, "keys"] => vec![(Post, Route::AdminRotateKey(id.to_string()))],
        ["admin", "clients", id, "webhook-secret"] => vec![(Post, Route::AdminRotateWebhookSecret(id.to_string()))],
        ["admin", "clients", id, "keys", key] => vec![(
            Delete,
            Route::AdminRevokeKey { client_id: id.to_string(), key_id: key.to_string() },
        )],
        ["admin", "clients", id, "metrics"] => vec![(Get, Route::AdminClientMetrics(id.to_string()))],
        ["admin", "generations"] => vec![(Get, Route::AdminGenerations)],
        ["admin", "usage"] => vec![(Get, Route::AdminUsage)],
        _ => return Err(RouteError::NotFound),
    };
    let allowed: Vec<&'static str> = choices.iter().map(|(m, _)| method_name(m)).collect();
    choices
        .into_iter()
        .find(|(m, _)| m == method || (*method == Method::Head && *m == Get))
        .map(|(_, route)| route)
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

    #[test]
    fn resolves_public_and_admin_routes() {
        assert_eq!(resolve(&Method::Get, "/health"), Ok(Route::Health));
        assert_eq!(resolve(&Method::Post, "/api/images/generate"), Ok(Route::Generate));
        assert_eq!(resolve(&Method::Get, "/api/generations/"), Ok(Route::ListGenerations));
        assert_eq!(
            resolve(&Method::Delete, "/admin/clients/cl_1/keys/key_2"),
            Ok(Route::AdminRevokeKey { client_id: "cl_1".into(), key_id: "key_2".into() })
        );
        assert_eq!(resolve(&Method::Patch, "/admin/clients/cl_1"), Ok(Route::AdminUpdateClient("cl_1".into())));
    }

    #[test]
    fn wrong_methods_list_what_the_path_accepts() {
        assert_eq!(resolve(&Method::Get, "/api/images/generate"), Err(RouteError::MethodNotAllowed(vec!["POST"])));
        assert_eq!(resolve(&Method::Put, "/admin/clients"), Err(RouteError::MethodNotAllowed(vec!["GET", "POST"])));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        assert_eq!(resolve(&Method::Get, "/"), Err(RouteError::NotFound));
        assert_eq!(resolve(&Method::Get, "/api/images"), Err(RouteError::NotFound));
        assert_eq!(resolve(&Method::Get, "/admin/clients/a/b/c/d"), Err(RouteError::NotFound));
    }
}
