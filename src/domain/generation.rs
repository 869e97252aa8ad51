//! A try-on request as the widget sends it, parsed into values that cannot be
//! wrong by the time anything is sent upstream.

use super::capped_list::CappedList;
use super::image::{ImagePolicy, ImageRef};
use super::input::{parse_json, InputError};
use super::shopper::{Metadata, ShopperId};
use std::collections::BTreeMap;
use serde::{Deserialize, Serialize};

/// The most garments one nano-banana-pro request may compose (plus the person).
pub const MAX_GARMENTS_NANO_BANANA: usize = 5;
pub const MAX_PROMPT_CHARS: usize = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Model {
    VirtualTryOn,
    NanoBananaPro,
}

impl Model {
    pub const ALL: [Model; 2] = [Model::VirtualTryOn, Model::NanoBananaPro];

    pub fn as_str(self) -> &'static str {
        match self {
            Model::VirtualTryOn => "fal-virtual-try-on",
            Model::NanoBananaPro => "nano-banana-pro",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn max_garments(self) -> usize {
        match self {
            Model::VirtualTryOn => 1,
            Model::NanoBananaPro => MAX_GARMENTS_NANO_BANANA,
        }
    }
}

/// How a generation attempt ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Error,
    /// A job its client canceled: not a failure, and never charged.
    Canceled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "error" => Some(Outcome::Error),
            "canceled" => Some(Outcome::Canceled),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelOptions {
    VirtualTryOn { preserve_pose: bool },
    NanoBananaPro {
        prompt: Option<String>,
        aspect_ratio: Option<String>,
        resolution: Option<String>,
        output_format: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct GenerationRequest {
    pub model: Model,
    pub person: ImageRef,
    pub garments: Vec<ImageRef>,
    pub options: ModelOptions,
    /// The shopper it is for, as the shop's server named them (browser
    /// credentials name their shopper themselves; see `for_shopper`).
    pub shopper_id: Option<ShopperId>,
    pub metadata: Metadata,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGenerationRequest {
    model: String,
    person_image_url: String,
    /// One more than any model takes, so "too many" can still be told.
    garment_image_urls: CappedList<String, { MAX_GARMENTS_NANO_BANANA + 1 }>,
    preserve_pose: Option<bool>,
    prompt: Option<String>,
    aspect_ratio: Option<String>,
    resolution: Option<String>,
    output_format: Option<String>,
    shopper_id: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

const ASPECT_RATIOS: &[&str] = &[
    "auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16",
];
const RESOLUTIONS: &[&str] = &["1K", "2K", "4K"];
const OUTPUT_FORMATS: &[&str] = &["jpeg", "png", "webp"];

impl GenerationRequest {
    pub fn from_json(body: &[u8], policy: &ImagePolicy) -> Result<Self, InputError> {
        let raw: RawGenerationRequest = parse_json(body)?;
        let model = Model::parse(&raw.model).ok_or_else(|| {
            InputError::invalid(
                "unknown_model",
                format!(
                    "unknown model `{}`; expected one of: {}",
                    raw.model,
                    Model::ALL.map(Model::as_str).join(", ")
                ),
            )
        })?;
        let count = raw.garment_image_urls.total;
        if count == 0 || count > model.max_garments() {
            return Err(InputError::invalid(
                "invalid_garments",
                format!(
                    "`garment_image_urls` must hold between 1 and {} image(s) for {}, got {count}",
                    model.max_garments(),
                    model.as_str()
                ),
            ));
        }
        // The images move out of the parsed body, uncopied (they can be megabytes).
        let person = ImageRef::parse("person_image_url", raw.person_image_url, policy)?;
        let garments = raw
            .garment_image_urls
            .kept
            .into_iter()
            .enumerate()
            .map(|(i, url)| ImageRef::parse(&format!("garment_image_urls[{i}]"), url, policy))
            .collect::<Result<Vec<_>, _>>()?;
        let options = match model {
            Model::VirtualTryOn => {
                reject_option(model, "prompt", raw.prompt.is_some())?;
                reject_option(model, "aspect_ratio", raw.aspect_ratio.is_some())?;
                reject_option(model, "resolution", raw.resolution.is_some())?;
                reject_option(model, "output_format", raw.output_format.is_some())?;
                ModelOptions::VirtualTryOn { preserve_pose: raw.preserve_pose.unwrap_or(true) }
            }
            Model::NanoBananaPro => {
                reject_option(model, "preserve_pose", raw.preserve_pose.is_some())?;
                ModelOptions::NanoBananaPro {
                    prompt: raw.prompt.map(check_prompt).transpose()?,
                    aspect_ratio: one_of("aspect_ratio", raw.aspect_ratio, ASPECT_RATIOS)?,
                    resolution: one_of("resolution", raw.resolution, RESOLUTIONS)?,
                    output_format: one_of("output_format", raw.output_format, OUTPUT_FORMATS)?,
                }
            }
        };
        let shopper_id = raw.shopper_id.as_deref().map(ShopperId::parse).transpose()?;
        let metadata = Metadata::check(raw.metadata.unwrap_or_default())?;
        Ok(Self { model, person, garments, options, shopper_id, metadata })
    }

    /// The request as made through a browser credential acting for
    /// `shopper`: the body may not name another one.
    pub fn for_shopper(mut self, shopper: &ShopperId) -> Result<Self, InputError> {
        if self.shopper_id.is_some() {
            return Err(InputError::invalid(
                "shopper_id_not_allowed",
                "`shopper_id` is set by the widget's credential; only a shop's server may name a shopper in the body",
            ));
        }
        self.shopper_id = Some(shopper.clone());
        Ok(self)
    }
}

fn reject_option(model: Model, name: &str, present: bool) -> Result<(), InputError> {
    if present {
        return Err(InputError::invalid(
            "unsupported_option",
            format!("`{name}` is not an option of {}", model.as_str()),
        ));
    }
    Ok(())
}

fn one_of(name: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, InputError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(InputError::invalid(
            "invalid_option",
            format!("`{name}` must be one of: {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

fn check_prompt(prompt: String) -> Result<String, InputError> {
    let trimmed = prompt.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_PROMPT_CHARS {
        return Err(InputError::invalid(
            "invalid_option",
            format!("`prompt` must hold 1 to {MAX_PROMPT_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<GenerationRequest, InputError> {
        let policy = ImagePolicy { allow_loopback_http: false, max_data_uri_bytes: 1 << 20 };
        GenerationRequest::from_json(v.to_string().as_bytes(), &policy)
    }

    fn code(r: Result<GenerationRequest, InputError>) -> &'static str {
        match r.unwrap_err() {
            InputError::Invalid { code, .. } => code,
            InputError::Malformed(_) => "malformed",
        }
    }

    const P: &str = "https://shop.example/person.jpg";
    const G: &str = "https://shop.example/shirt.jpg";

    #[test]
    fn try_on_request_defaults_to_preserving_pose() {
        let r = parse(json!({"model":"fal-virtual-try-on","person_image_url":P,"garment_image_urls":[G]})).unwrap();
        assert_eq!(r.model, Model::VirtualTryOn);
        assert_eq!(r.options, ModelOptions::VirtualTryOn { preserve_pose: true });
    }

    #[test]
    fn try_on_takes_exactly_one_garment() {
        assert_eq!(code(parse(json!({"model":"fal-virtual-try-on","person_image_url":P,"garment_image_urls":[G,G]}))), "invalid_garments");
        assert_eq!(code(parse(json!({"model":"fal-virtual-try-on","person_image_url":P,"garment_image_urls":[]}))), "invalid_garments");
    }

    #[test]
    fn nano_banana_composes_up_to_the_maximum() {
        let five = vec![G; MAX_GARMENTS_NANO_BANANA];
        assert!(parse(json!({"model":"nano-banana-pro","person_image_url":P,"garment_image_urls":five})).is_ok());
        let six = vec![G; MAX_GARMENTS_NANO_BANANA + 1];
        assert_eq!(code(parse(json!({"model":"nano-banana-pro","person_image_url":P,"garment_image_urls":six}))), "invalid_garments");
    }

    #[test]
    fn a_huge_garment_list_is_refused_by_count_without_being_built() {
        let body = format!(
            r#"{{"model":"nano-banana-pro","person_image_url":"{P}","garment_image_urls":[{}""]}}"#,
            "\"\",".repeat(1_000_000)
        );
        let policy = ImagePolicy { allow_loopback_http: false, max_data_uri_bytes: 1 << 20 };
        let err = GenerationRequest::from_json(body.as_bytes(), &policy).unwrap_err();
        assert!(matches!(err, InputError::Invalid { code: "invalid_garments", ref message } if message.contains("got 1000001")), "{err:?}");
    }

    #[test]
    fn unknown_models_and_foreign_options_are_refused() {
        assert_eq!(code(parse(json!({"model":"dall-e","person_image_url":P,"garment_image_urls":[G]}))), "unknown_model");
        assert_eq!(code(parse(json!({"model":"fal-virtual-try-on","person_image_url":P,"garment_image_urls":[G],"resolution":"2K"}))), "unsupported_option");
        assert_eq!(code(parse(json!({"model":"nano-banana-pro","person_image_url":P,"garment_image_urls":[G],"resolution":"8K"}))), "invalid_option");
        assert_eq!(code(parse(json!({"model":"nano-banana-pro","person_image_url":P,"garment_image_urls":[G],"prompt":"  "}))), "invalid_option");
    }

    #[test]
    fn bad_garment_urls_name_their_position() {
        let err = parse(json!({"model":"nano-banana-pro","person_image_url":P,"garment_image_urls":[G,"ftp://x"]})).unwrap_err();
        assert!(matches!(err, InputError::Invalid { message, .. } if message.contains("garment_image_urls[1]")));
    }
}
