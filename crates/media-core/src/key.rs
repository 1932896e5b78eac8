//! Where a stored file lives: `<owner>/<purpose>/<name>[-thumb].<extension>`, the name being
//! a content hash and a random part (so two uploads of the same bytes are two files, and
//! removing one never breaks a link to the other). The one
//! grammar every store and the `/uploads/…` route use; anything that does not parse names no
//! file, so a path cannot climb out of the store (`..`, `/`, `\`, `%2e` are simply not in it).
//!
//! Each `Purpose` (free images and documents, avatars, resumes, and the three files an account
//! field points to) has its own folder, so replacing one file never removes a file something
//! else links to.

use std::fmt;

use kernel::UserId;

use crate::kind::{Family, FileKind};

/// Why a file was uploaded, which decides what it may be, how it is processed and where it goes.
/// Files that a field of the account points to (the user's avatar, the portfolio profile's
/// avatar and resume) live apart from free uploads, so replacing one never deletes a file that
/// something else may link to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// `POST /upload/image` and `/upload/images`.
    Image,
    /// `POST /upload/document`.
    Document,
    /// `POST /upload/avatar`: an image kept to avatar size.
    Avatar,
    /// `POST /upload/resume`: a document.
    Resume,
    /// `POST /users/profile/avatar`: becomes `user.avatar`.
    UserAvatar,
    /// `POST /portfolio/profile/avatar`: becomes the portfolio profile's `avatar`.
    ProfileAvatar,
    /// `POST /portfolio/profile/resume`: becomes the portfolio profile's `resumeUrl`.
    ProfileResume,
}

impl Purpose {
    pub const ALL: [Self; 7] = [
        Self::Image,
        Self::Document,
        Self::Avatar,
        Self::Resume,
        Self::UserAvatar,
        Self::ProfileAvatar,
        Self::ProfileResume,
    ];

    /// The folder of the owner's files it is stored in.
    #[must_use]
    pub fn folder(self) -> &'static str {
        match self {
            Self::Image => "images",
            Self::Document => "documents",
            Self::Avatar => "avatars",
            Self::Resume => "resumes",
            Self::UserAvatar => "user-avatar",
            Self::ProfileAvatar => "profile-avatar",
            Self::ProfileResume => "profile-resume",
        }
    }

    fn from_folder(folder: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.folder() == folder)
    }

    /// The family of kinds it accepts.
    #[must_use]
    pub fn family(self) -> Family {
        match self {
            Self::Image | Self::Avatar | Self::UserAvatar | Self::ProfileAvatar => Family::Image,
            Self::Document | Self::Resume | Self::ProfileResume => Family::Document,
        }
    }

    /// The longest side of a stored image, in pixels; larger images are scaled down.
    #[must_use]
    pub fn max_side(self) -> u32 {
        match self {
            Self::Avatar | Self::UserAvatar | Self::ProfileAvatar => 512,
            _ => 2560,
        }
    }
}

/// The original (as stored) or its thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Original,
    Thumbnail,
}

/// The name of one stored file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub owner: UserId,
    pub purpose: Purpose,
    /// 32 lowercase hex digits: the first 96 bits of the SHA-256 of the stored original, then 32
    /// random bits. A name never changes content, so it can be cached for good.
    pub hash: String,
    pub variant: Variant,
    pub kind: FileKind,
}

/// Hex digits of a name: [`CONTENT_HEX`] of the content hash, the rest random.
pub const HASH_LEN: usize = 32;
/// Hex digits of the content hash in a name.
pub const CONTENT_HEX: usize = 24;
const THUMB_SUFFIX: &str = "-thumb";

impl FileKey {
    /// A new name for an original with this content hash (hex, at least [`CONTENT_HEX`]
    /// digits).
    #[must_use]
    pub fn original(owner: &UserId, purpose: Purpose, content_hash: &str, kind: FileKind) -> Self {
        let random = hex::encode(rand::random::<[u8; (HASH_LEN - CONTENT_HEX) / 2]>());
        Self {
            owner: owner.clone(),
            purpose,
            hash: content_hash
                .chars()
                .take(CONTENT_HEX)
                .chain(random.chars())
                .collect(),
            variant: Variant::Original,
            kind,
        }
    }

    /// The thumbnail of this file (of the same kind).
    #[must_use]
    pub fn thumbnail(&self) -> Self {
        Self {
            variant: Variant::Thumbnail,
            ..self.clone()
        }
    }

    /// The prefix of every key of `owner`, for listing and erasing their files.
    #[must_use]
    pub fn owner_prefix(owner: &UserId) -> String {
        format!("{owner}/")
    }

    /// Reads a key; `None` for anything that is not exactly a name this service gives.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('/');
        let (Some(owner), Some(folder), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        // Ids are stored lower-case; an upper-case spelling would be a second name for a file.
        if owner.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let owner = UserId::parse(owner).ok()?;
        let purpose = Purpose::from_folder(folder)?;
        let (stem, extension) = name.split_once('.')?;
        let kind = FileKind::from_extension(extension)?;
        let (hash, variant) = match stem.strip_suffix(THUMB_SUFFIX) {
            Some(hash) => (hash, Variant::Thumbnail),
            None => (stem, Variant::Original),
        };
        let hex = hash.len() == HASH_LEN
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let fits = kind.family() == purpose.family()
            && (variant == Variant::Original || kind.family() == Family::Image);
        (hex && fits).then(|| Self {
            owner,
            purpose,
            hash: hash.to_owned(),
            variant,
            kind,
        })
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.variant {
            Variant::Original => "",
            Variant::Thumbnail => THUMB_SUFFIX,
        };
        write!(
            f,
            "{}/{}/{}{suffix}.{}",
            self.owner,
            self.purpose.folder(),
            self.hash,
            self.kind.extension()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> UserId {
        UserId::parse("0123456789abcdef01234567").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_round_trip_through_their_spelling() {
        let key = FileKey::original(
            &owner(),
            Purpose::ProfileAvatar,
            "00112233445566778899aabbccddeeff0011",
            FileKind::Png,
        );
        let spelled = key.to_string();
        assert!(
            spelled.starts_with("0123456789abcdef01234567/profile-avatar/00112233445566778899aabb")
                && spelled.ends_with(".png")
                && spelled.len() == "0123456789abcdef01234567/profile-avatar/".len() + 36,
            "{spelled}"
        );
        let again = FileKey::original(
            &owner(),
            Purpose::ProfileAvatar,
            "00112233445566778899aabbccddeeff0011",
            FileKind::Png,
        );
        assert_ne!(key, again, "two uploads of the same bytes are two files");
        for key in [key.clone(), key.thumbnail()] {
            assert_eq!(FileKey::parse(&key.to_string()), Some(key));
        }
    }

    #[test]
    fn nothing_but_a_given_name_parses() {
        let hash = "00112233445566778899aabbccddeeff";
        let owner = "0123456789abcdef01234567";
        for raw in [
            format!("../{owner}/images/{hash}.png"),
            format!("{owner}/../images/{hash}.png"),
            format!("{owner}/images/../{hash}.png"),
            format!("{owner}/images/{hash}.png/.."),
            format!("/{owner}/images/{hash}.png"),
            format!("{owner}//images/{hash}.png"),
            format!("{owner}/images/{hash}.PNG"),
            format!("{owner}/images/{hash}.svg"),
            format!("{owner}/images/{hash}.png.html"),
            format!("{owner}/images/{}.png", hash.to_uppercase()),
            format!("{owner}/images/{hash}0.png"),
            format!("{owner}/images/{hash}.pdf"),
            format!("{owner}/documents/{hash}-thumb.pdf"),
            format!("{owner}/secrets/{hash}.png"),
            format!("{}/images/{hash}.png", owner.to_uppercase()),
            format!("{owner}\\images\\{hash}.png"),
            format!("{owner}/images/%2e%2e.png"),
            format!("{owner}/images"),
            String::new(),
        ] {
            assert_eq!(FileKey::parse(&raw), None, "{raw}");
        }
    }
}
