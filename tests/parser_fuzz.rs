//! Property-based fuzzing of every parser that reads input from outside:
//! API keys, generation requests, image references, cursors, FAL's webhook
//! headers and bodies, admin client changes, cookies and session tokens,
//! FAL's answers. Each target runs a fixed number of cases from a fixed
//! seed (so a failure reproduces), on the host, in `cargo test`. The
//! property is always at least "returns, never panics" — a panic in the
//! worker aborts its wasm instance and every request in flight on it.
//!
//! `FUZZ_CASES=N` runs N cases per target instead of the default.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};
use serde_json::{json, Value};
use tryon_edge::domain::api_key::{ApiKey, KeyKind};
use tryon_edge::domain::result_url;
use tryon_edge::domain::shopper::{Metadata, ShopperId};
use tryon_edge::domain::signing::SigningKeys;
use tryon_edge::domain::sse::SseReader;
use tryon_edge::domain::widget_token::WidgetToken;
use tryon_edge::domain::client::{normalize_origins, origin_allowed, ClientChanges, NewClient};
use tryon_edge::domain::cursor::{page_size, Cursor};
use tryon_edge::domain::generation::GenerationRequest;
use tryon_edge::domain::ids::ClientId;
use tryon_edge::domain::image::{ImagePolicy, ImageRef};
use tryon_edge::domain::job::is_job_id;
use tryon_edge::domain::session::{session_state, token_from_cookie_header, SessionTimes, SessionToken};
use tryon_edge::domain::time::{month_bounds, parse_rfc3339, to_rfc3339};
use tryon_edge::fal::models::{error_reason, parse_output, parse_queue_status, parse_submission, ResultUrls};
use tryon_edge::fal::webhook::{keys_from_jwks, parse_report, SignedDelivery};
use tryon_edge::limiter::login::source_scope;

fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4096);
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x7e57_f022),
        failure_persistence: None,
        ..Config::default()
    }
}

fn policy() -> ImagePolicy {
    ImagePolicy { allow_loopback_http: false, max_data_uri_bytes: 64 * 1024 }
}

/// Strings that look like what the parser expects, then get mutated: a
/// uniform random string almost never gets past the first check.
fn near(valid: String) -> impl Strategy<Value = String> {
    let len = valid.chars().count();
    (0..=len, prop::sample::select(vec!["", "é", "\u{0}", "_", "/", "%", "💥", "a", "==", " ", "\u{202e}"]), 0..3usize)
        .prop_map(move |(at, insert, remove)| {
            let mut chars: Vec<char> = valid.chars().collect();
            let end = (at + remove).min(chars.len());
            chars.splice(at..end, insert.chars());
            chars.into_iter().collect()
        })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,80}", ".{0,40}"]
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,24}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn generation_field() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "model", "person_image_url", "garment_image_urls", "preserve_pose", "prompt", "aspect_ratio", "resolution", "output_format", "extra",
    ])
}

/// A valid generation body with one field replaced by arbitrary JSON.
fn mutated_generation_body() -> impl Strategy<Value = Vec<u8>> {
    (generation_field(), any_json(), any::<bool>()).prop_map(|(field, value, nano)| {
        let mut body = if nano {
            json!({"model":"nano-banana-pro","person_image_url":"https://a.example/p.png","garment_image_urls":["https://a.example/g.png"],"resolution":"2K"})
        } else {
            json!({"model":"fal-virtual-try-on","person_image_url":"https://a.example/p.png","garment_image_urls":["https://a.example/g.png"]})
        };
        body[field] = value;
        body.to_string().into_bytes()
    })
}

fn valid_key() -> String {
    ApiKey::generate(&ClientId::parse("cl_abcdefghjkmnpqrs").unwrap(), KeyKind::Secret).reveal().to_string()
}

fn valid_publishable_key() -> String {
    ApiKey::generate(&ClientId::parse("cl_abcdefghjkmnpqrs").unwrap(), KeyKind::Publishable).reveal().to_string()
}

fn signing_keys() -> SigningKeys {
    SigningKeys::parse("k1:fuzzing-signing-secret-of-at-least-32-chars").unwrap()
}

fn valid_widget_token() -> String {
    WidgetToken {
        client_id: ClientId::parse("cl_abcdefghjkmnpqrs").unwrap(),
        origin: "https://shop.example".into(),
        shopper_id: ShopperId::parse("cust-1").unwrap(),
        expires_at: 2_000_000_000_000,
    }
    .sign(&signing_keys())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn api_keys_parse_totally(raw in prop_oneof![any_text(), near(valid_key()), near(valid_publishable_key()), near(format!("vto_{}é_{}", "a".repeat(15), "A".repeat(37)))]) {
        if let Ok(key) = ApiKey::parse(&raw) {
            prop_assert_eq!(key.reveal(), raw.as_str());
            prop_assert!(raw.is_ascii());
            let _ = (key.display_prefix(), format!("{key:?}"), key.hash());
        }
    }

    #[test]
    fn generated_keys_always_parse(_n in 0..4u8) {
        let key = valid_key();
        prop_assert!(ApiKey::parse(&key).is_ok());
    }

    #[test]
    fn generation_requests_parse_totally(body in prop_oneof![
        any::<Vec<u8>>(),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        mutated_generation_body(),
    ]) {
        if let Ok(request) = GenerationRequest::from_json(&body, &policy()) {
            prop_assert!(!request.garments.is_empty() && request.garments.len() <= request.model.max_garments());
            let _ = tryon_edge::fal::models::fal_body(&request);
        }
    }

    #[test]
    fn image_references_parse_totally(raw in prop_oneof![
        any_text(),
        near("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA".to_string()),
        near("data:image/webp;base64,UklGRgAAAABXRUJQVlA4IA==".to_string()),
        near("https://cdn.shop.example/p.jpg".to_string()),
        ("[a-z/]{0,12}", "[A-Za-z0-9+/=]{0,40}").prop_map(|(mime, b64)| format!("data:{mime};base64,{b64}")),
    ], loopback in any::<bool>()) {
        let policy = ImagePolicy { allow_loopback_http: loopback, max_data_uri_bytes: 64 };
        if let Ok(image) = ImageRef::parse("f", raw.clone(), &policy) {
            let s = image.as_str();
            prop_assert!(s.starts_with("data:image/") || s.starts_with("https://") || (loopback && s.starts_with("http://")));
        }
    }

    #[test]
    fn cursors_decode_totally_and_round_trip(raw in prop_oneof![any_text(), near(Cursor { created_at: 1, id: "gen_a".into() }.encode())],
                                             at in any::<u64>(), id in "[a-z0-9_]{1,64}") {
        let _ = Cursor::decode(&raw);
        let _ = page_size(Some(&raw));
        let cursor = Cursor { created_at: at, id };
        prop_assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn webhook_headers_and_bodies_parse_totally(
        request_id in any_text(), user_id in any_text(), timestamp in any_text(),
        signature in prop_oneof![any_text(), "[0-9a-f]{128}", "[0-9a-fé]{127,129}"],
        body in prop_oneof![any::<Vec<u8>>(), any_json().prop_map(|v| v.to_string().into_bytes()),
            (any_text(), any_json()).prop_map(|(id, payload)| json!({"request_id": id, "status": "OK", "payload": payload}).to_string().into_bytes())],
        now in any::<u64>(),
    ) {
        let headers = [
            ("x-fal-webhook-request-id", request_id), ("x-fal-webhook-user-id", user_id),
            ("x-fal-webhook-timestamp", timestamp), ("x-fal-webhook-signature", signature),
        ];
        if let Ok(delivery) = SignedDelivery::from_headers(|name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())) {
            prop_assert!(delivery.verify(&body, &[], now).is_err());
        }
        let _ = parse_report(&body, ResultUrls::default());
        let _ = keys_from_jwks(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn client_changes_parse_totally(body in prop_oneof![
        any::<Vec<u8>>(),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        (prop::sample::select(vec!["name", "email", "active", "usage_limit", "rate_limit_per_minute", "rate_limit_burst", "max_concurrent", "allowed_origins", "webhook_url"]), any_json())
            .prop_map(|(field, value)| json!({ field: value }).to_string().into_bytes()),
    ], loopback in any::<bool>()) {
        let _ = ClientChanges::from_json(&body, loopback);
        let _ = NewClient::from_json(&body);
    }

    #[test]
    fn origins_normalise_and_match_totally(origins in prop::collection::vec(prop_oneof![any_text(), near("https://*.shop.example".into())], 0..4), origin in any_text()) {
        if let Ok(normalised) = normalize_origins(&origins) {
            let _ = origin_allowed(&normalised, &origin);
        }
    }

    #[test]
    fn cookies_and_session_tokens_parse_totally(header in prop_oneof![
        any_text(),
        near(format!("theme=dark; __Host-vto_admin_session={}; x=1", "A".repeat(43))),
    ], times in any::<(u64, u64, u64, u64, u64)>()) {
        if let Some(raw) = token_from_cookie_header(&header) {
            if let Some(token) = SessionToken::parse(raw) {
                prop_assert_eq!(token.storage_key(&[7; 32]).len(), 64);
            }
        }
        let (created_at, last_seen_at, expires_at, now, idle) = times;
        let _ = session_state(SessionTimes { created_at, last_seen_at, expires_at }, now, idle);
    }

    #[test]
    fn fal_answers_parse_totally(body in prop_oneof![any_text(), any_json().prop_map(|v| v.to_string()),
        any_json().prop_map(|v| json!({"images": [{"url": v}]}).to_string()),
        any_text().prop_map(|u| json!({"request_id":"r","status_url":u,"response_url":u,"cancel_url":u}).to_string())]) {
        let _ = parse_submission(&body, "https://queue.fal.run");
        let _ = parse_queue_status(&body);
        let _ = parse_output(&body, ResultUrls { allow_loopback_http: true });
        prop_assert!(error_reason(&body).chars().count() <= 500);
    }

    #[test]
    fn small_parsers_are_total(raw in any_text(), ms in any::<u64>()) {
        let _ = (is_job_id(&raw), month_bounds(&raw), parse_rfc3339(&raw), to_rfc3339(ms), source_scope(Some(&raw)));
        let _ = tryon_edge::domain::csv::row(&[raw.clone(), raw]);
    }

    #[test]
    fn widget_credentials_parse_totally(raw in prop_oneof![any_text(), near(valid_widget_token()), near("anon_0123456789abcdefghijkl".into())], now in any::<u64>()) {
        let keys = signing_keys();
        if let Ok(token) = WidgetToken::verify(&raw, &keys, now) {
            prop_assert!(token.expires_at > now);
        }
        let _ = (ShopperId::parse(&raw), ShopperId::anonymous(&raw));
    }

    #[test]
    fn result_url_queries_and_metadata_parse_totally(pairs in prop::collection::vec((any_text(), any_text()), 0..6), now in any::<u64>(), meta in any_json()) {
        let keys = signing_keys();
        let _ = result_url::verify(&keys, "gen_abcdefghij0123456789", &pairs, now);
        if let Ok(map) = serde_json::from_value::<std::collections::BTreeMap<String, String>>(meta) {
            let _ = Metadata::check(map);
        }
    }

    #[test]
    fn fal_status_streams_parse_totally(chunks in prop::collection::vec(prop_oneof![any_text(), Just("data: {\"status\":\"COMPLETED\"}\n\n".to_string()), Just("\n".to_string())], 0..8)) {
        let mut reader = SseReader::default();
        for chunk in &chunks {
            if reader.push(chunk).is_err() {
                break;
            }
        }
    }
}
