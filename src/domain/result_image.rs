//! What we accept to keep of FAL's output: an image by its first bytes (a
//! PNG, JPEG or WebP signature, whatever the `Content-Type` says — a gateway
//! error page can be labelled `image/png`), no larger than the cap.

/// Enough leading bytes to recognise every accepted format (WebP needs 12).
pub const SNIFF_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

impl ImageKind {
    /// The format whose signature `head` starts with, if any.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Self::Png),
            [0xFF, 0xD8, 0xFF, ..] => Some(Self::Jpeg),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::Webp].into_iter().find(|k| k.content_type() == content_type)
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }
}

/// Why FAL's output is not kept, and the generation is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { bytes: u64, cap: u64 },
    NotAnImage,
}

impl Refusal {
    /// The sentence stored on the generation row and shown to the client.
    pub fn describe(&self) -> String {
        match self {
            Refusal::TooLarge { bytes, cap } => {
                format!("the output image is {bytes} bytes, more than the {cap}-byte limit")
            }
            Refusal::NotAnImage => "the output file is not a PNG, JPEG or WebP image".into(),
        }
    }
}

/// Checks a size before anything is read: the declared `Content-Length`,
/// or the count so far while reading a body that declared none.
pub fn check_size(bytes: u64, cap: u64) -> Result<(), Refusal> {
    if bytes > cap {
        return Err(Refusal::TooLarge { bytes, cap });
    }
    Ok(())
}

/// Checks the first bytes; an empty file is not an image either.
pub fn check_head(head: &[u8]) -> Result<ImageKind, Refusal> {
    ImageKind::sniff(head).ok_or(Refusal::NotAnImage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_signatures() {
        assert_eq!(ImageKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(ImageKind::Png));
        assert_eq!(ImageKind::sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some(ImageKind::Jpeg));
        assert_eq!(ImageKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(ImageKind::sniff(b"RIFF\x24\0\0\0WAVEfmt "), None, "RIFF alone is not WebP");
    }

    #[test]
    fn an_error_page_labelled_png_is_not_an_image() {
        assert_eq!(check_head(b"<!doctype html>\n<html>"), Err(Refusal::NotAnImage));
        assert_eq!(check_head(b""), Err(Refusal::NotAnImage));
        assert_eq!(check_head(b"\x89PNG"), Err(Refusal::NotAnImage), "a truncated signature is not enough");
    }

    #[test]
    fn sizes_over_the_cap_are_refused_with_both_numbers() {
        assert_eq!(check_size(10, 10), Ok(()));
        assert!(check_size(11, 10).is_err(), "one byte over the cap");
        let refusal = check_size(31_457_280, 26_214_400).unwrap_err();
        assert!(refusal.describe().contains("31457280") && refusal.describe().contains("26214400"));
    }

    #[test]
    fn content_types_and_extensions_round_trip() {
        for kind in [ImageKind::Png, ImageKind::Jpeg, ImageKind::Webp] {
            assert_eq!(ImageKind::from_content_type(kind.content_type()), Some(kind));
        }
        assert_eq!(ImageKind::Jpeg.extension(), "jpg");
        assert_eq!(ImageKind::from_content_type("text/html"), None);
    }
}
