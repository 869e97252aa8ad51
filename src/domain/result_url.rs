//! Our URL for a generation's image:
//! `{base}/v1/results/{generation_id}?client={client_id}&exp={unix s}&kid={key id}&sig={tag}`.
//! The signature (see `signing`, purpose `result-url`) covers the generation,
//! the client and the expiry, so the worker serves the object straight from
//! the bucket — its key is derived from those two ids — without reading D1,
//! and nobody can reach another image by editing the URL.

use super::ids::ClientId;
use super::signing::SigningKeys;

pub const PURPOSE: &str = "result-url";
pub const PATH_PREFIX: &str = "/v1/results/";
/// How long a minted URL works, unless `RESULT_URL_TTL_SECONDS` says otherwise.
pub const DEFAULT_TTL_S: u64 = 7 * 24 * 3600;
/// Expiries are rounded down to the hour (to a 24th of a shorter lifetime),
/// so every read within that step hands out the same URL and a browser
/// reuses the image it already holds; a URL never outlives the lifetime.
pub const EXPIRY_STEP_S: u64 = 3600;
/// The longest a browser may keep a served image without asking again.
const MAX_CACHE_S: u64 = 24 * 3600;

/// Mints URLs for the views of one request. Without signing keys it mints
/// nothing, and views fall back to FAL's URL.
pub struct ResultUrls<'a> {
    keys: Option<&'a SigningKeys>,
    base: String,
    ttl_s: u64,
    now_s: u64,
}

impl<'a> ResultUrls<'a> {
    pub fn new(keys: Option<&'a SigningKeys>, base: impl Into<String>, ttl_s: u64, now_ms: u64) -> Self {
        Self { keys, base: base.into(), ttl_s, now_s: now_ms / 1000 }
    }

    /// Our signed URL for the image of `generation_id`, if we can sign.
    pub fn url(&self, client_id: &str, generation_id: &str) -> Option<String> {
        let keys = self.keys?;
        let exp = expiry_s(self.now_s, self.ttl_s);
        let (kid, sig) = keys.sign(PURPOSE, message(generation_id, client_id, exp).as_bytes());
        Some(format!("{}{PATH_PREFIX}{generation_id}?client={client_id}&exp={exp}&kid={kid}&sig={sig}", self.base))
    }

    /// What a view shows: our URL, or FAL's (as recorded) when we cannot sign.
    pub fn link(&self, client_id: &str, generation_id: &str, fal_url: Option<&str>) -> Option<String> {
        self.url(client_id, generation_id).or_else(|| fal_url.map(str::to_string))
    }

    pub fn can_sign(&self) -> bool {
        self.keys.is_some()
    }
}

pub fn expiry_s(now_s: u64, ttl_s: u64) -> u64 {
    let exact = now_s.saturating_add(ttl_s);
    let step = (ttl_s / 24).clamp(1, EXPIRY_STEP_S);
    exact - exact % step
}

fn message(generation_id: &str, client_id: &str, exp: u64) -> String {
    format!("{generation_id}\n{client_id}\n{exp}")
}

/// A URL whose signature checked out: the image it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRef {
    pub client_id: ClientId,
    pub generation_id: String,
    pub expires_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Missing, malformed or wrong signature (or an edited URL).
    Invalid,
    /// A genuine URL past its expiry.
    Expired,
}

/// Checks the query of a request for `generation_id`'s image at `now_ms`.
/// The signature is checked before the expiry, so an edited `exp` is
/// "invalid", never "expired".
pub fn verify(keys: &SigningKeys, generation_id: &str, query: &[(String, String)], now_ms: u64) -> Result<ResultRef, UrlRefusal> {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(client), Some(exp), Some(kid), Some(sig)) = (param("client"), param("exp"), param("kid"), param("sig")) else {
        return Err(UrlRefusal::Invalid);
    };
    let client_id = ClientId::parse(client).ok_or(UrlRefusal::Invalid)?;
    let expires_s: u64 = exp.parse().map_err(|_| UrlRefusal::Invalid)?;
    if !keys.verify(PURPOSE, kid, message(generation_id, client_id.as_str(), expires_s).as_bytes(), sig) {
        return Err(UrlRefusal::Invalid);
    }
    if now_ms / 1000 >= expires_s {
        return Err(UrlRefusal::Expired);
    }
    Ok(ResultRef { client_id, generation_id: generation_id.to_string(), expires_s })
}

/// How long a browser may keep the image: at most a day, and never past the URL's expiry.
pub fn cache_max_age_s(expires_s: u64, now_ms: u64) -> u64 {
    expires_s.saturating_sub(now_ms / 1000).min(MAX_CACHE_S)
}

/// The entity tags an `If-None-Match` header names, without quotes or the
/// weak prefix (a weak match is enough to answer 304 for a GET).
pub fn etags_in(if_none_match: &str) -> Vec<String> {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: &str = "gen_abcdefghij0123456789";
    const CLIENT: &str = "cl_0123456789abcdef";
    const NOW_MS: u64 = 1_800_000_000_000;

    fn keys() -> SigningKeys {
        SigningKeys::parse("k1:0123456789abcdef0123456789abcdef").unwrap()
    }

    fn query_of(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    fn minted(now_ms: u64) -> String {
        let k = keys();
        ResultUrls::new(Some(&k), "https://api.example", DEFAULT_TTL_S, now_ms).url(CLIENT, GEN).unwrap()
    }

    #[test]
    fn a_minted_url_names_the_image_and_verifies_until_it_expires() {
        let url = minted(NOW_MS);
        assert!(url.starts_with(&format!("https://api.example/v1/results/{GEN}?client={CLIENT}&exp=")));
        let checked = verify(&keys(), GEN, &query_of(&url), NOW_MS).unwrap();
        assert_eq!((checked.client_id.as_str(), checked.generation_id.as_str()), (CLIENT, GEN));
        let lifetime = checked.expires_s - NOW_MS / 1000;
        assert!((DEFAULT_TTL_S - EXPIRY_STEP_S + 1..=DEFAULT_TTL_S).contains(&lifetime), "{lifetime}");
        assert_eq!(verify(&keys(), GEN, &query_of(&url), checked.expires_s * 1000), Err(UrlRefusal::Expired));
        assert!(verify(&keys(), GEN, &query_of(&url), checked.expires_s * 1000 - 1).is_ok());
    }

    #[test]
    fn urls_minted_within_the_same_hour_are_identical() {
        let hour_start = (NOW_MS / 3_600_000) * 3_600_000 + 1;
        assert_eq!(minted(hour_start), minted(hour_start + 3_500_000));
        assert_ne!(minted(hour_start), minted(hour_start + 3_600_000));
    }

    #[test]
    fn a_short_lifetime_is_rounded_finely_and_never_already_over() {
        assert_eq!(expiry_s(1_000_000, 60), 1_000_060 - 1_000_060 % 2);
        for now in 1_000_000..1_000_100 {
            let exp = expiry_s(now, 60);
            assert!(exp > now + 55 && exp <= now + 60, "{now} -> {exp}");
        }
    }

    #[test]
    fn edited_urls_are_invalid_not_expired() {
        let url = minted(NOW_MS);
        let query = query_of(&url);
        let edit = |name: &str, value: &str| -> Vec<(String, String)> {
            query.iter().map(|(k, v)| (k.clone(), if k == name { value.to_string() } else { v.clone() })).collect()
        };
        assert_eq!(verify(&keys(), "gen_abcdefghij0123456780", &query, NOW_MS), Err(UrlRefusal::Invalid), "another image");
        assert_eq!(verify(&keys(), GEN, &edit("client", "cl_0123456789abcdee"), NOW_MS), Err(UrlRefusal::Invalid), "another client");
        assert_eq!(verify(&keys(), GEN, &edit("exp", "99999999999"), NOW_MS), Err(UrlRefusal::Invalid), "a later expiry");
        assert_eq!(verify(&keys(), GEN, &edit("exp", "1"), NOW_MS), Err(UrlRefusal::Invalid), "an earlier expiry");
        assert_eq!(verify(&keys(), GEN, &edit("kid", "k2"), NOW_MS), Err(UrlRefusal::Invalid));
        assert_eq!(verify(&keys(), GEN, &edit("sig", "AAAA"), NOW_MS), Err(UrlRefusal::Invalid));
        assert_eq!(verify(&keys(), GEN, &edit("client", "nonsense"), NOW_MS), Err(UrlRefusal::Invalid));
        assert_eq!(verify(&keys(), GEN, &[], NOW_MS), Err(UrlRefusal::Invalid));
    }

    #[test]
    fn without_keys_views_fall_back_to_fals_url() {
        let urls = ResultUrls::new(None, "https://api.example", DEFAULT_TTL_S, NOW_MS);
        assert_eq!(urls.url(CLIENT, GEN), None);
        assert_eq!(urls.link(CLIENT, GEN, Some("https://fal.media/x.png")).as_deref(), Some("https://fal.media/x.png"));
        let k = keys();
        let signed = ResultUrls::new(Some(&k), "https://api.example", DEFAULT_TTL_S, NOW_MS);
        assert!(signed.link(CLIENT, GEN, Some("https://fal.media/x.png")).unwrap().starts_with("https://api.example/v1/results/"));
    }

    #[test]
    fn browsers_keep_an_image_a_day_at_most_and_never_past_its_url() {
        assert_eq!(cache_max_age_s(2_000_000, 1_000_000_000), 86_400);
        assert_eq!(cache_max_age_s(1_000_100, 1_000_000_000), 100);
        assert_eq!(cache_max_age_s(10, 1_000_000_000), 0);
    }

    #[test]
    fn if_none_match_lists_are_read_without_quotes_or_weakness() {
        assert_eq!(etags_in(r#""abc""#), vec!["abc"]);
        assert_eq!(etags_in(r#"W/"abc", "def""#), vec!["abc", "def"]);
        assert!(etags_in("").is_empty());
    }
}
