//! Admin input about clients (shops): creation and partial updates, and the
//! widget origins a client allows.

use super::event::{parse_callback_types, EventType};
use super::input::{parse_json, InputError};
use serde::Deserialize;

pub const DEFAULT_USAGE_LIMIT: u32 = 5000;
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;
pub const DEFAULT_MAX_CONCURRENT: u32 = 4;
const MAX_CONCURRENT: u32 = 1000;
const MAX_USAGE_LIMIT: u32 = 100_000_000;
const MAX_RATE_LIMIT_PER_MINUTE: u32 = 100_000;
const MAX_NAME_CHARS: usize = 200;
const MAX_ORIGINS: usize = 50;
pub const DEFAULT_WIDGET_RATE_LIMIT_PER_MINUTE: u32 = 30;
pub const DEFAULT_SHOPPER_RATE_LIMIT_PER_MINUTE: u32 = 5;
pub const DEFAULT_SHOPPER_DAILY_LIMIT: u32 = 30;
const MAX_SHOPPER_DAILY_LIMIT: u32 = 10_000;
/// A client's image retention is between a day and ten years (and, when
/// applied, never longer than `RETENTION_DAYS`: see `retention_days`).
pub const MAX_RETENTION_DAYS: u32 = 3650;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub name: String,
    pub email: Option<String>,
    pub usage_limit: u32,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: Option<u32>,
    pub max_concurrent: u32,
    pub allowed_origins: Vec<String>,
    pub widget: WidgetSettings,
}

/// Limits on a client's browser traffic (publishable keys, widget tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WidgetSettings {
    pub widget_rate_limit_per_minute: u32,
    pub shopper_rate_limit_per_minute: u32,
    pub shopper_daily_limit: u32,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            widget_rate_limit_per_minute: DEFAULT_WIDGET_RATE_LIMIT_PER_MINUTE,
            shopper_rate_limit_per_minute: DEFAULT_SHOPPER_RATE_LIMIT_PER_MINUTE,
            shopper_daily_limit: DEFAULT_SHOPPER_DAILY_LIMIT,
        }
    }
}

/// A partial update: `None` leaves a field as it is. `email: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub active: Option<bool>,
    pub usage_limit: Option<u32>,
    pub rate_limit_per_minute: Option<u32>,
    pub rate_limit_burst: Option<Option<u32>>,
    pub max_concurrent: Option<u32>,
    pub allowed_origins: Option<Vec<String>>,
    /// Where job callbacks go; `Some(None)` stops them.
    pub webhook_url: Option<Option<String>>,
    pub widget_rate_limit_per_minute: Option<u32>,
    pub shopper_rate_limit_per_minute: Option<u32>,
    pub shopper_daily_limit: Option<u32>,
    /// Days its result images are kept; `Some(None)` returns to the default.
    pub retention_days: Option<Option<u32>>,
    /// Which callback event types the client wants; `Some(None)` is every type.
    pub webhook_events: Option<Option<Vec<EventType>>>,
}

impl ClientChanges {
    /// Whether the limiter must learn of this change.
    pub fn touches_limits(&self) -> bool {
        self.active.is_some()
            || self.usage_limit.is_some()
            || self.rate_limit_per_minute.is_some()
            || self.rate_limit_burst.is_some()
            || self.max_concurrent.is_some()
            || self.allowed_origins.is_some()
            || self.widget_rate_limit_per_minute.is_some()
            || self.shopper_rate_limit_per_minute.is_some()
            || self.shopper_daily_limit.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNewClient {
    name: String,
    email: Option<String>,
    usage_limit: Option<u32>,
    rate_limit_per_minute: Option<u32>,
    rate_limit_burst: Option<u32>,
    max_concurrent: Option<u32>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    widget_rate_limit_per_minute: Option<u32>,
    shopper_rate_limit_per_minute: Option<u32>,
    shopper_daily_limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientChanges {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    active: Option<bool>,
    usage_limit: Option<u32>,
    rate_limit_per_minute: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    rate_limit_burst: Option<Option<u32>>,
    max_concurrent: Option<u32>,
    allowed_origins: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    webhook_url: Option<Option<String>>,
    widget_rate_limit_per_minute: Option<u32>,
    shopper_rate_limit_per_minute: Option<u32>,
    shopper_daily_limit: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    retention_days: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    webhook_events: Option<Option<Vec<String>>>,
}

/// Distinguishes `"field": null` (clear it) from a missing field (keep it).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl NewClient {
    pub fn from_json(body: &[u8]) -> Result<Self, InputError> {
        let raw: RawNewClient = parse_json(body)?;
        Ok(Self {
            name: check_name(&raw.name)?,
            email: raw.email.as_deref().map(check_email).transpose()?.flatten(),
            usage_limit: check_usage_limit(raw.usage_limit.unwrap_or(DEFAULT_USAGE_LIMIT))?,
            rate_limit_per_minute: check_rate_limit(
                raw.rate_limit_per_minute.unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE),
            )?,
            rate_limit_burst: raw.rate_limit_burst.map(check_burst).transpose()?,
            max_concurrent: check_concurrency(raw.max_concurrent.unwrap_or(DEFAULT_MAX_CONCURRENT))?,
            allowed_origins: normalize_origins(&raw.allowed_origins)?,
            widget: WidgetSettings {
                widget_rate_limit_per_minute: check_widget_rate(raw.widget_rate_limit_per_minute.unwrap_or(DEFAULT_WIDGET_RATE_LIMIT_PER_MINUTE))?,
                shopper_rate_limit_per_minute: check_shopper_rate(raw.shopper_rate_limit_per_minute.unwrap_or(DEFAULT_SHOPPER_RATE_LIMIT_PER_MINUTE))?,
                shopper_daily_limit: check_shopper_daily(raw.shopper_daily_limit.unwrap_or(DEFAULT_SHOPPER_DAILY_LIMIT))?,
            },
        })
    }
}

impl ClientChanges {
    /// `allow_loopback_http` lets a local setup send callbacks to `http://127.0.0.1`.
    pub fn from_json(body: &[u8], allow_loopback_http: bool) -> Result<Self, InputError> {
        let raw: RawClientChanges = parse_json(body)?;
        let changes = Self {
            name: raw.name.as_deref().map(check_name).transpose()?,
            email: raw.email.map(|e| e.as_deref().map(check_email).transpose().map(Option::flatten)).transpose()?,
            active: raw.active,
            usage_limit: raw.usage_limit.map(check_usage_limit).transpose()?,
            rate_limit_per_minute: raw.rate_limit_per_minute.map(check_rate_limit).transpose()?,
            rate_limit_burst: raw.rate_limit_burst.map(|b| b.map(check_burst).transpose()).transpose()?,
            max_concurrent: raw.max_concurrent.map(check_concurrency).transpose()?,
            allowed_origins: raw.allowed_origins.as_deref().map(normalize_origins).transpose()?,
            webhook_url: raw
                .webhook_url
                .map(|u| u.map(|u| check_webhook_url(&u, allow_loopback_http)).transpose())
                .transpose()?,
            widget_rate_limit_per_minute: raw.widget_rate_limit_per_minute.map(check_widget_rate).transpose()?,
            shopper_rate_limit_per_minute: raw.shopper_rate_limit_per_minute.map(check_shopper_rate).transpose()?,
            shopper_daily_limit: raw.shopper_daily_limit.map(check_shopper_daily).transpose()?,
            retention_days: raw.retention_days.map(|d| d.map(check_retention).transpose()).transpose()?,
            webhook_events: raw
                .webhook_events
                .map(|e| e.map(|e| parse_callback_types(&e).map_err(|m| InputError::invalid("invalid_webhook_events", m))).transpose())
                .transpose()?,
        };
        if changes.is_empty() {
            return Err(InputError::invalid("empty_update", "the body changes no field"));
        }
        Ok(changes)
    }
}

fn check_name(name: &str) -> Result<String, InputError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(InputError::invalid(
            "invalid_name",
            format!("`name` must hold 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// An empty string clears the address; anything else must look like one.
fn check_email(email: &str) -> Result<Option<String>, InputError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        return Err(InputError::invalid("invalid_email", "`email` is not an email address"));
    }
    Ok(Some(email.to_string()))
}

/// A whole-number limit within `min..=max`; the message names the field.
fn limit_in(field: &str, value: u32, min: u32, max: u32) -> Result<u32, InputError> {
    if !(min..=max).contains(&value) {
        return Err(InputError::invalid("invalid_limit", format!("`{field}` must be between {min} and {max}")));
    }
    Ok(value)
}

fn check_usage_limit(limit: u32) -> Result<u32, InputError> {
    limit_in("usage_limit", limit, 0, MAX_USAGE_LIMIT)
}

fn check_rate_limit(limit: u32) -> Result<u32, InputError> {
    limit_in("rate_limit_per_minute", limit, 1, MAX_RATE_LIMIT_PER_MINUTE)
}

fn check_webhook_url(raw: &str, allow_loopback_http: bool) -> Result<String, InputError> {
    let bad = || InputError::invalid("invalid_webhook_url", "`webhook_url` must be an https URL");
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    let ok = match url.scheme() {
        "https" => !host.is_empty(),
        "http" => allow_loopback_http && loopback,
        _ => false,
    };
    if !ok || !url.username().is_empty() || raw.len() > 2048 {
        return Err(bad());
    }
    Ok(url.to_string())
}

fn check_retention(days: u32) -> Result<u32, InputError> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(InputError::invalid("invalid_retention", format!("`retention_days` must be between 1 and {MAX_RETENTION_DAYS}")));
    }
    Ok(days)
}

fn check_burst(burst: u32) -> Result<u32, InputError> {
    limit_in("rate_limit_burst", burst, 1, MAX_RATE_LIMIT_PER_MINUTE)
}

fn check_widget_rate(n: u32) -> Result<u32, InputError> {
    limit_in("widget_rate_limit_per_minute", n, 1, MAX_RATE_LIMIT_PER_MINUTE)
}

fn check_shopper_rate(n: u32) -> Result<u32, InputError> {
    limit_in("shopper_rate_limit_per_minute", n, 1, MAX_RATE_LIMIT_PER_MINUTE)
}

fn check_shopper_daily(n: u32) -> Result<u32, InputError> {
    limit_in("shopper_daily_limit", n, 1, MAX_SHOPPER_DAILY_LIMIT)
}

fn check_concurrency(n: u32) -> Result<u32, InputError> {
    limit_in("max_concurrent", n, 1, MAX_CONCURRENT)
}

/// Origins are kept as `scheme://host[:port]`, lower-case, without a trailing
/// slash, so that comparing them with a browser's `Origin` header is exact.
/// A leading `*.` in the host allows every subdomain of that host.
pub fn normalize_origins(origins: &[String]) -> Result<Vec<String>, InputError> {
    if origins.len() > MAX_ORIGINS {
        return Err(InputError::invalid("invalid_origin", format!("at most {MAX_ORIGINS} origins")));
    }
    let mut out: Vec<String> = Vec::with_capacity(origins.len());
    for raw in origins {
        let origin = normalize_origin(raw)?;
        if !out.contains(&origin) {
            out.push(origin);
        }
    }
    Ok(out)
}

fn normalize_origin(raw: &str) -> Result<String, InputError> {
    let bad = || InputError::invalid("invalid_origin", format!("`{raw}` is not an origin like https://shop.example"));
    let trimmed = raw.trim().trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(bad)?;
    let (wildcard, host_port) = match rest.strip_prefix("*.") {
        Some(h) => ("*.", h),
        None => ("", rest),
    };
    let url = url::Url::parse(&format!("{scheme}://{host_port}")).map_err(|_| bad())?;
    let plain = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
    if !matches!(url.scheme(), "http" | "https") || !plain || url.host_str().is_none() {
        return Err(bad());
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{wildcard}{}{port}", url.scheme(), url.host_str().unwrap_or_default()))
}

/// Does a browser `Origin` match one of the client's allowed origins?
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    allowed.iter().any(|pattern| match pattern.split_once("://*.") {
        Some((scheme, base)) => origin
            .strip_prefix(scheme)
            .and_then(|o| o.strip_prefix("://"))
            .and_then(|host| host.strip_suffix(base))
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => *pattern == origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code<T: std::fmt::Debug>(r: Result<T, InputError>) -> &'static str {
        match r.unwrap_err() {
            InputError::Invalid { code, .. } => code,
            InputError::Malformed(_) => "malformed",
        }
    }

    #[test]
    fn new_client_gets_the_documented_defaults() {
        let c = NewClient::from_json(json!({"name":"  Acme  "}).to_string().as_bytes()).unwrap();
        assert_eq!(c.name, "Acme");
        assert_eq!(c.usage_limit, 5000);
        assert_eq!(c.rate_limit_per_minute, 60);
        assert_eq!((c.rate_limit_burst, c.max_concurrent), (None, 4));
        assert!(c.allowed_origins.is_empty());
    }

    #[test]
    fn invalid_client_fields_are_refused() {
        let parse = |v: serde_json::Value| NewClient::from_json(v.to_string().as_bytes());
        assert_eq!(code(parse(json!({"name":""}))), "invalid_name");
        assert_eq!(code(parse(json!({"name":"A","email":"nope"}))), "invalid_email");
        assert_eq!(code(parse(json!({"name":"A","rate_limit_per_minute":0}))), "invalid_limit");
        assert_eq!(code(parse(json!({"name":"A","usage_limit":-1}))), "invalid_request");
        assert_eq!(code(parse(json!({"name":"A","allowed_origins":["https://a.example/path"]}))), "invalid_origin");
    }

    #[test]
    fn changes_tell_null_from_missing() {
        let clear = ClientChanges::from_json(br#"{"email":null}"#, false).unwrap();
        assert_eq!(clear.email, Some(None));
        let keep = ClientChanges::from_json(br#"{"active":false}"#, false).unwrap();
        assert_eq!(keep.email, None);
        assert_eq!(code(ClientChanges::from_json(b"{}", false)), "empty_update");
        let burst = ClientChanges::from_json(br#"{"rate_limit_burst":null}"#, false).unwrap();
        assert_eq!(burst.rate_limit_burst, Some(None));
        assert!(burst.touches_limits());
        assert!(!ClientChanges::from_json(br#"{"name":"x"}"#, false).unwrap().touches_limits());
        assert_eq!(code(ClientChanges::from_json(br#"{"max_concurrent":0}"#, false)), "invalid_limit");
    }

    #[test]
    fn retention_can_be_set_cleared_and_is_range_checked() {
        let set = ClientChanges::from_json(br#"{"retention_days":30}"#, false).unwrap();
        assert_eq!(set.retention_days, Some(Some(30)));
        assert!(!set.touches_limits());
        assert_eq!(ClientChanges::from_json(br#"{"retention_days":null}"#, false).unwrap().retention_days, Some(None));
        assert_eq!(code(ClientChanges::from_json(br#"{"retention_days":0}"#, false)), "invalid_retention");
        assert_eq!(code(ClientChanges::from_json(br#"{"retention_days":3651}"#, false)), "invalid_retention");
    }

    #[test]
    fn webhook_urls_must_be_https_unless_loopback_is_allowed() {
        let set = |url: &str, loopback| ClientChanges::from_json(format!(r#"{{"webhook_url":"{url}"}}"#).as_bytes(), loopback);
        assert_eq!(set("https://shop.example/hooks/tryon", false).unwrap().webhook_url, Some(Some("https://shop.example/hooks/tryon".into())));
        assert_eq!(code(set("http://shop.example/hook", true)), "invalid_webhook_url");
        assert!(set("http://127.0.0.1:9000/hook", true).is_ok());
        assert_eq!(code(set("http://127.0.0.1:9000/hook", false)), "invalid_webhook_url");
        assert_eq!(ClientChanges::from_json(br#"{"webhook_url":null}"#, false).unwrap().webhook_url, Some(None));
    }

    #[test]
    fn callback_event_types_are_chosen_or_reset_to_all_with_null() {
        let chosen = ClientChanges::from_json(br#"{"webhook_events":["job.failed"]}"#, false).unwrap();
        assert_eq!(chosen.webhook_events, Some(Some(vec![EventType::JobFailed])));
        assert_eq!(ClientChanges::from_json(br#"{"webhook_events":null}"#, false).unwrap().webhook_events, Some(None));
        assert_eq!(code(ClientChanges::from_json(br#"{"webhook_events":["job.done"]}"#, false)), "invalid_webhook_events");
        assert_eq!(code(ClientChanges::from_json(br#"{"webhook_events":[]}"#, false)), "invalid_webhook_events");
    }

    #[test]
    fn origins_are_normalized_and_deduplicated() {
        let o = normalize_origins(&["HTTPS://Shop.Example/".into(), "https://shop.example".into(), "http://localhost:5173".into()]).unwrap();
        assert_eq!(o, vec!["https://shop.example", "http://localhost:5173"]);
        assert_eq!(normalize_origins(&["https://*.shop.example".into()]).unwrap(), vec!["https://*.shop.example"]);
        assert!(normalize_origins(&["shop.example".into()]).is_err());
        assert!(normalize_origins(&["ftp://shop.example".into()]).is_err());
    }

    #[test]
    fn origin_matching_is_exact_or_subdomain_wildcard() {
        let allowed = vec!["https://shop.example".to_string(), "https://*.brand.example".to_string()];
        assert!(origin_allowed(&allowed, "https://shop.example"));
        assert!(!origin_allowed(&allowed, "http://shop.example"));
        assert!(!origin_allowed(&allowed, "https://evilshop.example"));
        assert!(origin_allowed(&allowed, "https://es.brand.example"));
        assert!(!origin_allowed(&allowed, "https://brand.example"));
        assert!(!origin_allowed(&allowed, "https://evilbrand.example"));
        assert!(!origin_allowed(&[], "https://shop.example"));
    }
}
