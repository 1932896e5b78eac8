//! URL-safe slugs for blog posts.

const MAX_LEN: usize = 100;

/// Lower-case ASCII letters and digits joined by single hyphens, at most 100 characters;
/// `post` when nothing usable remains.
#[must_use]
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if slug.len() >= MAX_LEN {
                break;
            }
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "post".to_owned()
    } else {
        slug.to_owned()
    }
}

/// Whether `raw` is already a slug as [`slugify`] makes them.
#[must_use]
pub fn is_slug(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_LEN + 10
        && raw.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_hyphenated_lower_case_ascii() {
        assert_eq!(slugify("Hello, World!  Rust 2024"), "hello-world-rust-2024");
        assert_eq!(slugify("  --Ünïcode-- "), "n-code");
        assert_eq!(slugify("???"), "post");
        assert!(slugify(&"a".repeat(300)).len() <= MAX_LEN);
    }

    #[test]
    fn only_well_formed_slugs_are_accepted() {
        assert!(is_slug("hello-world-2"));
        for bad in ["", "-a", "a-", "a--b", "A", "a b", "a/b", "$ne"] {
            assert!(!is_slug(bad), "{bad}");
        }
    }
}
