//! Turning request bodies into typed values, with errors a shop developer can act on.

use serde::de::DeserializeOwned;

#[derive(Debug, PartialEq, Eq)]
pub enum InputError {
    /// The body is not JSON at all (400).
    Malformed(String),
    /// The JSON is well formed but says something we cannot accept (422).
    Invalid { code: &'static str, message: String },
}

impl InputError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }
}

/// Deserialises `bytes`, telling syntax errors (400) apart from shape errors
/// such as wrong types, missing or unknown fields (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, InputError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => InputError::invalid("invalid_request", strip_position(&e.to_string())),
            Category::Syntax | Category::Eof | Category::Io => {
                InputError::Malformed(format!("request body is not valid JSON: {e}"))
            }
        }
    })
}

/// serde appends "at line 1 column 57", which means little to someone who sent
/// a body built by code; the field name in the message is what helps.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
    }

    #[test]
    fn syntax_errors_are_malformed_and_shape_errors_invalid() {
        assert!(matches!(parse_json::<Sample>(b"{not json"), Err(InputError::Malformed(_))));
        assert!(matches!(parse_json::<Sample>(b""), Err(InputError::Malformed(_))));
        assert_eq!(
            parse_json::<Sample>(br#"{"name": 3}"#).unwrap_err(),
            InputError::invalid("invalid_request", "invalid type: integer `3`, expected a string")
        );
        assert_eq!(
            parse_json::<Sample>(br#"{}"#).unwrap_err(),
            InputError::invalid("invalid_request", "missing field `name`")
        );
        let unknown = parse_json::<Sample>(br#"{"name":"a","nmae":"b"}"#).unwrap_err();
        assert!(matches!(unknown, InputError::Invalid { message, .. } if message.contains("unknown field `nmae`")));
    }
}
