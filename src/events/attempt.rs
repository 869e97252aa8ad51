//! One attempt at one receiver: a bounded POST (see `outbound::post_once`)
//! and what came back, as the log records it.

use crate::outbound::{post_once, OutboundError};
use worker::Date;

/// A receiver gets this long to answer (its headers) before the attempt
/// counts as failed; the next one follows the schedule.
pub const TIMEOUT_MS: u64 = 10_000;

/// What an attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// `None` when no answer came (network error, timeout).
    pub status_code: Option<u16>,
    /// Why it counts as failed; `None` for a 2xx.
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl Attempted {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

pub async fn post(url: &str, headers: &[(String, String)], body: &str) -> Attempted {
    let started = Date::now().as_millis();
    let result = post_once(url, headers, body, TIMEOUT_MS).await;
    let latency_ms = Date::now().as_millis().saturating_sub(started);
    let (status_code, error) = match result {
        Ok(status) => (Some(status), failure_of(status)),
        Err(OutboundError::Timeout { after_ms }) => (None, Some(format!("no answer within {after_ms} ms"))),
        Err(OutboundError::Network(e)) => (None, Some(format!("could not connect: {}", clip(&e)))),
        // `post_once` reads no body and follows nothing; a status is a status.
        Err(OutboundError::Redirected { status } | OutboundError::TooLarge { status, .. }) => (Some(status), failure_of(status)),
    };
    Attempted { status_code, error, latency_ms }
}

/// Only a 2xx is a delivery. A redirect is a failure: it is not followed,
/// because the signed event must reach the URL the client registered.
pub fn failure_of(status: u16) -> Option<String> {
    match status {
        200..=299 => None,
        300..=399 => Some(format!("HTTP {status}: redirects are not followed; register the final URL")),
        _ => Some(format!("HTTP {status}")),
    }
}

/// Receivers get events only over https; plain http only to loopback hosts
/// in local development (`ALLOW_LOOPBACK_IMAGE_URLS`), as the admin API
/// already requires when the URL is set. Checked again at every attempt,
/// since settings and stored URLs can change independently.
pub fn check_target(raw: &str, allow_loopback_http: bool) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|_| "the receiver URL is not a URL".to_string())?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
    match url.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if allow_loopback_http && loopback => Ok(()),
        _ => Err("the receiver URL must use https".into()),
    }
}

/// Error texts from the runtime can be long; the log keeps the start.
fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_2xx_is_a_delivery_and_redirects_say_why_they_failed() {
        assert_eq!(failure_of(204), None);
        assert_eq!(failure_of(500).as_deref(), Some("HTTP 500"));
        assert!(failure_of(301).unwrap().contains("redirects are not followed"));
        assert!(failure_of(410).is_some());
    }

    #[test]
    fn receivers_must_use_https_except_loopback_in_development() {
        assert!(check_target("https://shop.example/hook", false).is_ok());
        assert!(check_target("http://shop.example/hook", true).is_err());
        assert!(check_target("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(check_target("http://127.0.0.1:9000/hook", false).is_err());
        assert!(check_target("ftp://shop.example/", true).is_err());
        assert!(check_target("not a url", true).is_err());
    }
}
