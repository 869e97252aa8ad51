//! Shoppers: the person on a shop's page, named by an opaque id, and the
//! free-form metadata a shop attaches to a generation.
//!
//! A shopper id comes from the shop (server requests, widget session tokens:
//! its own customer id, say) or, with a publishable key, from the widget: a
//! random anonymous id (`anon_` + base62) kept in the shopper's browser. A
//! browser can claim only an anonymous id, so a publishable key can never
//! act for a shopper the shop named.

use super::input::InputError;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const MAX_SHOPPER_ID_CHARS: usize = 128;
pub const ANONYMOUS_PREFIX: &str = "anon_";
const ANONYMOUS_MIN: usize = 22;
const ANONYMOUS_MAX: usize = 64;
pub const MAX_METADATA_ENTRIES: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ShopperId(String);

impl ShopperId {
    /// A shop-given id: 1 to 128 characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let count = raw.chars().count();
        if count == 0 || count > MAX_SHOPPER_ID_CHARS || raw.chars().any(char::is_control) || raw.trim() != raw {
            return Err(InputError::invalid(
                "invalid_shopper_id",
                format!("`shopper_id` must be 1 to {MAX_SHOPPER_ID_CHARS} characters, without control characters or surrounding spaces"),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// A widget's anonymous id: `anon_` and 22 to 64 base62 characters.
    pub fn anonymous(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(ANONYMOUS_PREFIX)?;
        let ok = (ANONYMOUS_MIN..=ANONYMOUS_MAX).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// String keys and values a shop attaches to a generation (a product id, a
/// campaign); returned with it, never interpreted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn check(raw: BTreeMap<String, String>) -> Result<Self, InputError> {
        let invalid = |why: String| InputError::invalid("invalid_metadata", why);
        if raw.len() > MAX_METADATA_ENTRIES {
            return Err(invalid(format!("`metadata` holds at most {MAX_METADATA_ENTRIES} entries")));
        }
        for (key, value) in &raw {
            if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS || key.chars().any(char::is_control) {
                return Err(invalid(format!("`metadata` keys are 1 to {MAX_METADATA_KEY_CHARS} characters without control characters")));
            }
            if value.chars().count() > MAX_METADATA_VALUE_CHARS || value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(invalid(format!("`metadata` values are at most {MAX_METADATA_VALUE_CHARS} characters")));
            }
        }
        Ok(Self(raw))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As stored: JSON, or nothing when empty.
    pub fn to_column(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(&self.0).unwrap_or_default())
    }

    /// From the stored column; unreadable content reads as empty.
    pub fn from_column(column: Option<&str>) -> Self {
        column.and_then(|c| serde_json::from_str(c).ok()).map(Self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_given_ids_are_opaque_but_bounded() {
        assert!(ShopperId::parse("cust-42").is_ok());
        assert!(ShopperId::parse("ünïcödé shopper").is_ok());
        assert!(ShopperId::parse(&"x".repeat(MAX_SHOPPER_ID_CHARS)).is_ok());
        assert!(ShopperId::parse(&"x".repeat(MAX_SHOPPER_ID_CHARS + 1)).is_err());
        assert!(ShopperId::parse("").is_err());
        assert!(ShopperId::parse("a\nb").is_err());
        assert!(ShopperId::parse(" padded").is_err());
    }

    #[test]
    fn anonymous_ids_have_one_shape() {
        assert!(ShopperId::anonymous("anon_0123456789abcdefghijKL").is_some());
        assert!(ShopperId::anonymous("anon_short").is_none());
        assert!(ShopperId::anonymous("cust-42").is_none());
        assert!(ShopperId::anonymous("anon_0123456789abcdefghij-L").is_none());
        assert!(ShopperId::anonymous("anon_0123456789abcdefghijKLé").is_none());
    }

    #[test]
    fn anonymous_ids_are_22_to_64_base62_characters_after_the_prefix() {
        let base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let id = |n: usize| format!("{ANONYMOUS_PREFIX}{}", base62.chars().cycle().take(n).collect::<String>());
        assert!(ShopperId::anonymous(&id(21)).is_none(), "21 characters");
        assert_eq!(ShopperId::anonymous(&id(22)).map(|s| s.as_str().len()), Some(5 + 22));
        assert_eq!(ShopperId::anonymous(&id(64)).map(|s| s.as_str().len()), Some(5 + 64));
        assert!(ShopperId::anonymous(&id(65)).is_none(), "65 characters");
        // Every base62 character is allowed, in the longest id too.
        assert!(ShopperId::anonymous(&format!("{ANONYMOUS_PREFIX}{base62}")).is_some());
    }

    #[test]
    fn metadata_is_bounded() {
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(Metadata::check(one("product", "sku-1")).is_ok());
        assert!(Metadata::check(one("", "x")).is_err());
        assert!(Metadata::check(one(&"k".repeat(41), "x")).is_err());
        assert!(Metadata::check(one("k", &"v".repeat(501))).is_err());
        let many: BTreeMap<String, String> = (0..21).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(Metadata::check(many).is_err());
        let m = Metadata::check(one("a", "b")).unwrap();
        assert_eq!(Metadata::from_column(m.to_column().as_deref()), m);
        assert_eq!(Metadata::from_column(Some("garbage")), Metadata::default());
    }

    #[test]
    fn metadata_admits_exactly_20_keys_of_40_characters_and_values_of_500() {
        let one = |k: String, v: String| BTreeMap::from([(k, v)]);
        let entries = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_string())).collect::<BTreeMap<_, _>>();
        assert!(Metadata::check(entries(20)).is_ok(), "20 keys");
        assert!(Metadata::check(entries(21)).is_err(), "21 keys");
        assert!(Metadata::check(one("k".repeat(40), "v".into())).is_ok(), "a 40-character key");
        assert!(Metadata::check(one("k".repeat(41), "v".into())).is_err(), "a 41-character key");
        assert!(Metadata::check(one("k".into(), "v".repeat(500))).is_ok(), "a 500-character value");
        assert!(Metadata::check(one("k".into(), "v".repeat(501))).is_err(), "a 501-character value");
        // Characters, not bytes: two-byte characters count once.
        assert!(Metadata::check(one("é".repeat(40), "é".repeat(500))).is_ok());
        assert!(Metadata::check(one("é".repeat(41), "v".into())).is_err());
        assert!(Metadata::check(one("k".into(), "é".repeat(501))).is_err());
        // All three limits at once.
        let full: BTreeMap<String, String> = (0..20).map(|i| (format!("{i:0>40}"), "v".repeat(500))).collect();
        assert!(Metadata::check(full).is_ok());
    }
}
