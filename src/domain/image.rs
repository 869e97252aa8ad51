//! Image references sent by the widget: an https URL, or a data URI of a PNG,
//! JPEG or WebP image. Plain http is accepted only for loopback hosts and only
//! when the operator turned it on for local development.

use super::input::InputError;
use base64::Engine;

pub const MAX_URL_LEN: usize = 4096;

#[derive(Clone, Debug)]
pub struct ImagePolicy {
    pub allow_loopback_http: bool,
    /// Decoded size cap for one data-URI image.
    pub max_data_uri_bytes: usize,
}

/// A validated image reference; FAL accepts both forms as-is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef(String);

impl ImageRef {
    /// Takes the string as parsed from the body: a data URI (megabytes) is
    /// kept as it is, never copied.
    pub fn parse(field: &str, raw: String, policy: &ImagePolicy) -> Result<Self, InputError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if let Some(rest) = trimmed.strip_prefix("data:") {
            check_data_uri(field, rest, policy)?;
            let kept = if trimmed.len() == raw.len() { raw } else { trimmed.to_string() };
            return Ok(Self(kept));
        }
        // FAL gets the URL as we read it, not as sent: a lenient spelling
        // (`https:host/…`, odd case, IDN) cannot mean something else there.
        check_url(field, trimmed, policy).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid(field: &str, why: &str) -> InputError {
    InputError::invalid("invalid_image", format!("`{field}` {why}"))
}

fn check_url(field: &str, raw: &str, policy: &ImagePolicy) -> Result<String, InputError> {
    if raw.len() > MAX_URL_LEN {
        return Err(invalid(field, &format!("is longer than {MAX_URL_LEN} characters")));
    }
    let url = url::Url::parse(raw).map_err(|_| invalid(field, "is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(field, "must not contain credentials"));
    }
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" if !host.is_empty() => Ok(url.to_string()),
        "http" if policy.allow_loopback_http && is_loopback(host) => Ok(url.to_string()),
        "http" => Err(invalid(field, "must use https")),
        _ => Err(invalid(field, "must be an https URL or a data URI of a PNG, JPEG or WebP image")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host.starts_with("127.")
}

fn check_data_uri(field: &str, rest: &str, policy: &ImagePolicy) -> Result<(), InputError> {
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| invalid(field, "is not a valid data URI"))?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| invalid(field, "must be a base64 data URI"))?;
    let magic: &[&[u8]] = match mime {
        "image/png" => &[b"\x89PNG\r\n\x1a\n"],
        "image/jpeg" | "image/jpg" => &[b"\xff\xd8\xff"],
        "image/webp" => &[b"RIFF"],
        _ => return Err(invalid(field, "must be a PNG, JPEG or WebP image")),
    };
    // Exactly what it decodes to: the padding (`=`) stands for no bytes.
    let padding = payload.bytes().rev().take(2).take_while(|&b| b == b'=').count();
    let decoded_len = (payload.len() / 4 * 3).saturating_sub(padding);
    if decoded_len > policy.max_data_uri_bytes {
        return Err(InputError::invalid(
            "image_too_large",
            format!("`{field}` is larger than {} bytes", policy.max_data_uri_bytes),
        ));
    }
    if payload.len() % 4 != 0
        || !payload.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
    {
        return Err(invalid(field, "is not valid base64"));
    }
    // Decoding the first block is enough to check what the image claims to be.
    let head = base64::engine::general_purpose::STANDARD
        .decode(payload.get(..payload.len().min(16)).unwrap_or_default())
        .map_err(|_| invalid(field, "is not valid base64"))?;
    let webp_ok = mime != "image/webp" || head.get(8..12) == Some(b"WEBP");
    if !magic.iter().any(|m| head.starts_with(m)) || !webp_ok {
        return Err(invalid(field, &format!("does not contain a {mime} image")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn policy(allow_loopback_http: bool) -> ImagePolicy {
        ImagePolicy { allow_loopback_http, max_data_uri_bytes: 1024 }
    }

    fn data_uri(mime: &str, bytes: &[u8]) -> String {
        format!("data:{mime};base64,{}", STANDARD.encode(bytes))
    }

    fn code(err: InputError) -> &'static str {
        match err {
            InputError::Invalid { code, .. } => code,
            InputError::Malformed(_) => "malformed",
        }
    }

    #[test]
    fn https_urls_are_accepted() {
        assert!(ImageRef::parse("f", "https://cdn.shop.example/p.jpg?w=800".into(), &policy(false)).is_ok());
    }

    #[test]
    fn http_is_refused_unless_loopback_is_allowed() {
        assert!(ImageRef::parse("f", "http://cdn.shop.example/p.jpg".into(), &policy(true)).is_err());
        assert!(ImageRef::parse("f", "http://127.0.0.1:9000/p.png".into(), &policy(false)).is_err());
        assert!(ImageRef::parse("f", "http://127.0.0.1:9000/p.png".into(), &policy(true)).is_ok());
    }

    #[test]
    fn other_schemes_credentials_and_garbage_are_refused() {
        for bad in ["ftp://x/p.png", "file:///etc/passwd", "not a url", "https://u:p@host/p.png", "javascript:alert(1)"] {
            assert!(ImageRef::parse("f", bad.into(), &policy(true)).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_uris_must_hold_the_image_type_they_claim() {
        let png = b"\x89PNG\r\n\x1a\n0000000000000000";
        assert!(ImageRef::parse("f", data_uri("image/png", png), &policy(false)).is_ok());
        assert!(ImageRef::parse("f", data_uri("image/jpeg", png), &policy(false)).is_err());
        assert!(ImageRef::parse("f", data_uri("image/gif", b"GIF89a"), &policy(false)).is_err());
        let webp = b"RIFF\x00\x00\x00\x00WEBPVP8 ";
        assert!(ImageRef::parse("f", data_uri("image/webp", webp), &policy(false)).is_ok());
        assert!(ImageRef::parse("f", "data:image/png;base64,@@@@".into(), &policy(false)).is_err());
        assert!(ImageRef::parse("f", "data:image/png,rawbytes".into(), &policy(false)).is_err());
    }

    #[test]
    fn oversized_data_uris_have_their_own_code() {
        let big = vec![0u8; 2000];
        let err = ImageRef::parse("f", data_uri("image/png", &big), &policy(false)).unwrap_err();
        assert_eq!(code(err), "image_too_large");
    }

    /// The cap is on the decoded bytes, padding not counted: with a cap of
    /// 1,024 bytes (`policy`), 1,024 pass whatever their padding, 1,025 do not.
    #[test]
    fn the_data_uri_cap_counts_decoded_bytes_exactly() {
        let png = |len: usize| {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.resize(len, 0);
            data_uri("image/png", &bytes)
        };
        for len in [1022, 1023, 1024] {
            assert!(ImageRef::parse("f", png(len), &policy(false)).is_ok(), "{len} bytes");
        }
        assert_eq!(code(ImageRef::parse("f", png(1025), &policy(false)).unwrap_err()), "image_too_large");
    }

    #[test]
    fn surrounding_spaces_are_trimmed_from_data_uris_too() {
        let png = data_uri("image/png", b"\x89PNG\r\n\x1a\n0000");
        let image = ImageRef::parse("f", format!("  {png}\n"), &policy(false)).unwrap();
        assert_eq!(image.as_str(), png);
    }
}
