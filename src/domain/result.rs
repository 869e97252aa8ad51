//! A generation's output image in our bucket: where it lives (a key derived
//! from the client and generation ids, so one client's images share a
//! prefix) and the state of our copy, kept on the generation row.

use super::generation::Outcome;
use serde::{Deserialize, Serialize};

/// The state of our copy of a successful generation's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// Being copied, or to be retried by the cron while FAL still has it;
    /// our URL redirects to FAL's meanwhile.
    Pending,
    /// In our bucket.
    Stored,
    /// Never copied: FAL's file was unusable or gone before a retry worked.
    Failed,
    /// Removed by retention or erasure.
    Deleted,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }
}

/// Where a generation's image is kept: `results/{client_id}/{generation_id}`.
pub fn object_key(client_id: &str, generation_id: &str) -> String {
    format!("{}{generation_id}", client_prefix(client_id))
}

/// The prefix under which all of one client's images are kept.
pub fn client_prefix(client_id: &str) -> String {
    format!("results/{client_id}/")
}

/// Generation ids are `gen_` + 20 [a-z0-9] (a job's generation shares its
/// job's suffix); anything else names no image.
pub fn is_generation_id(id: &str) -> bool {
    id.strip_prefix("gen_").is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// Whether a generation has an image to link to: a success whose image was
/// not given up on or deleted. Rows from before our copies existed (no
/// result status) still link: our URL sends the reader on to FAL's.
pub fn has_image(outcome: Outcome, result: Option<ResultStatus>) -> bool {
    outcome == Outcome::Success && matches!(result, None | Some(ResultStatus::Pending) | Some(ResultStatus::Stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_images_share_its_prefix() {
        let key = object_key("cl_0123456789abcdef", "gen_abcdefghij0123456789");
        assert_eq!(key, "results/cl_0123456789abcdef/gen_abcdefghij0123456789");
        assert!(key.starts_with(&client_prefix("cl_0123456789abcdef")));
        assert!(!object_key("cl_0123456789abcdeff", "gen_x").starts_with(&client_prefix("cl_0123456789abcdef")), "a prefix ends at a slash");
    }

    #[test]
    fn generation_ids_have_one_shape() {
        assert!(is_generation_id("gen_abcdefghij0123456789"));
        assert!(!is_generation_id("gen_ABCDEFGHIJ0123456789"));
        assert!(!is_generation_id("job_abcdefghij0123456789"));
        assert!(!is_generation_id("gen_../../etc/passwd00"));
    }

    #[test]
    fn only_successes_with_a_live_copy_link_to_an_image() {
        assert!(has_image(Outcome::Success, Some(ResultStatus::Stored)));
        assert!(has_image(Outcome::Success, Some(ResultStatus::Pending)));
        assert!(has_image(Outcome::Success, None));
        assert!(!has_image(Outcome::Success, Some(ResultStatus::Deleted)));
        assert!(!has_image(Outcome::Success, Some(ResultStatus::Failed)));
        assert!(!has_image(Outcome::Error, None));
    }

    #[test]
    fn statuses_are_lowercase_on_the_wire() {
        for s in [ResultStatus::Pending, ResultStatus::Stored, ResultStatus::Failed, ResultStatus::Deleted] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
