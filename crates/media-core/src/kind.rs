//! File kinds, decided from the first bytes of the content (magic numbers), never from a file
//! name or a declared content type.

/// Every kind of file the service can accept. What a route accepts is a subset
/// ([`crate::Purpose::family`]), narrowed further by configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Jpeg,
    Png,
    WebP,
    Gif,
    Pdf,
}

/// Whether a kind is a picture (decoded, re-encoded, thumbnailed) or a document (stored as sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Image,
    Document,
}

/// The outcome of looking at the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    Known(FileKind),
    /// Fewer bytes than [`SNIFF_LEN`] were seen and they could still start a known kind.
    NeedMore,
    Unknown,
}

/// Bytes enough to tell every kind apart (WebP's `RIFF????WEBP` is the longest signature).
pub const SNIFF_LEN: usize = 12;

impl FileKind {
    pub const ALL: [Self; 5] = [Self::Jpeg, Self::Png, Self::WebP, Self::Gif, Self::Pdf];

    /// The kind the content starts as. `head` is the first bytes of the file; when the file is
    /// shorter than [`SNIFF_LEN`], it is the whole file and `NeedMore` means "not a known kind".
    #[must_use]
    pub fn sniff(head: &[u8]) -> Sniff {
        const SIGNATURES: [(&[u8], FileKind); 5] = [
            (&[0xFF, 0xD8, 0xFF], FileKind::Jpeg),
            (b"\x89PNG\r\n\x1a\n", FileKind::Png),
            (b"GIF87a", FileKind::Gif),
            (b"GIF89a", FileKind::Gif),
            (b"%PDF-", FileKind::Pdf),
        ];
        for (signature, kind) in SIGNATURES {
            if head.starts_with(signature) {
                return Sniff::Known(kind);
            }
        }
        if head.len() >= SNIFF_LEN && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            return Sniff::Known(Self::WebP);
        }
        // A file shorter than a signature may still be the start of it (`?`: any byte).
        let could_be = |signature: &[u8]| {
            head.len() < signature.len()
                && head
                    .iter()
                    .zip(signature)
                    .all(|(b, s)| *s == b'?' || b == s)
        };
        let partial = SIGNATURES.iter().any(|(signature, _)| could_be(signature))
            || could_be(b"RIFF????WEBP");
        if partial {
            Sniff::NeedMore
        } else {
            Sniff::Unknown
        }
    }

    #[must_use]
    pub fn family(self) -> Family {
        match self {
            Self::Pdf => Family::Document,
            Self::Jpeg | Self::Png | Self::WebP | Self::Gif => Family::Image,
        }
    }

    /// The media type it is served as.
    #[must_use]
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
            Self::Pdf => "application/pdf",
        }
    }

    /// The extension of stored names; one per kind, so a name tells its kind.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Gif => "gif",
            Self::Pdf => "pdf",
        }
    }

    #[must_use]
    pub fn from_extension(extension: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.extension() == extension)
    }

    /// The name configuration uses (`jpeg`, `png`, `webp`, `gif`, `pdf`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Gif => "gif",
            Self::Pdf => "pdf",
        }
    }

    /// Reads a configuration name; `jpg` is taken for `jpeg`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jpg" => Some(Self::Jpeg),
            other => Self::ALL.into_iter().find(|k| k.name() == other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_told_by_its_signature() {
        let mut webp = b"RIFF\x10\0\0\0WEBPVP8 ".to_vec();
        webp.extend_from_slice(&[0; 8]);
        let cases: [(&[u8], FileKind); 6] = [
            (
                &[
                    0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1,
                ],
                FileKind::Jpeg,
            ),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", FileKind::Png),
            (b"GIF89a\x01\0\x01\0\0\0", FileKind::Gif),
            (b"GIF87a\x01\0\x01\0\0\0", FileKind::Gif),
            (b"%PDF-1.7\n%\xe2\xe3", FileKind::Pdf),
            (&webp, FileKind::WebP),
        ];
        for (head, kind) in cases {
            assert_eq!(FileKind::sniff(head), Sniff::Known(kind), "{kind:?}");
        }
    }

    #[test]
    fn other_content_is_unknown_whatever_it_claims() {
        for head in [
            &b"<html><script>alert(1)</script>"[..],
            b"<svg xmlns=\"http://www.w3.org/2000/svg\">",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"PK\x03\x04\x14\0\0\0\0\0\0\0",
            b"BM\x36\0\x0c\0\0\0\0\0\x36\0",
        ] {
            assert_eq!(FileKind::sniff(head), Sniff::Unknown, "{head:?}");
        }
    }

    #[test]
    fn a_short_prefix_of_a_signature_needs_more_bytes() {
        assert_eq!(FileKind::sniff(b""), Sniff::NeedMore);
        assert_eq!(FileKind::sniff(&[0xFF, 0xD8]), Sniff::NeedMore);
        assert_eq!(FileKind::sniff(b"RIFF\0\0"), Sniff::NeedMore);
        assert_eq!(FileKind::sniff(b"%PD"), Sniff::NeedMore);
        assert_eq!(FileKind::sniff(b"%PX"), Sniff::Unknown);
    }

    #[test]
    fn names_and_extensions_round_trip() {
        for kind in FileKind::ALL {
            assert_eq!(FileKind::from_name(kind.name()), Some(kind));
            assert_eq!(FileKind::from_extension(kind.extension()), Some(kind));
        }
        assert_eq!(FileKind::from_name(" JPG "), Some(FileKind::Jpeg));
        assert_eq!(FileKind::from_name("svg"), None);
    }
}
