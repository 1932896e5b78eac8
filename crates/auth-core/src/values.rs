//! Validated value types. A value of one of these types is known good inside the core.

use std::fmt;

/// Why a raw value was refused; `field` is the API field name it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValueError {
    pub field: &'static str,
    /// The rule broken, by the API's rule names (`email`, `length`, `pattern`, `url`).
    pub rule: &'static str,
    pub message: &'static str,
}

fn refuse<T>(
    field: &'static str,
    rule: &'static str,
    message: &'static str,
) -> Result<T, ValueError> {
    Err(ValueError {
        field,
        rule,
        message,
    })
}

/// A normalised (trimmed, lowercased) email address: one account per address, whatever the case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// [`ValueError`] on anything that is not `local@domain.tld`, at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return refuse("email", "email", "must be a valid email");
        };
        let valid = email.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            refuse("email", "email", "must be a valid email")
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, used to derive a username.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A lowercase username of 3–30 characters from `[a-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 30;

    /// # Errors
    /// [`ValueError`] when the lowercased value is not `[a-z0-9_-]{3,30}`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim().to_lowercase();
        let allowed = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if allowed && (Self::MIN..=Self::MAX).contains(&name.len()) {
            Ok(Self(name))
        } else {
            refuse(
                "username",
                "pattern",
                "must be 3-30 characters of a-z, 0-9, _ or -",
            )
        }
    }

    /// A username derived from an email's local part: disallowed characters dropped, padded
    /// to the minimum length and cut to leave room for a uniqueness suffix.
    #[must_use]
    pub fn derive_from(email: &Email) -> Self {
        let mut base: String = email
            .local_part()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
            .take(Self::MAX - 7)
            .collect();
        while base.len() < Self::MIN {
            base.push('_');
        }
        Self(base)
    }

    /// The base for a user whose stored email is not a valid address.
    #[must_use]
    pub fn fallback() -> Self {
        Self("user".to_owned())
    }

    /// This username with a numeric suffix, still within the length limit.
    #[must_use]
    pub fn with_suffix(&self, suffix: u32) -> Self {
        let suffix = suffix.to_string();
        let keep = self.0.len().min(Self::MAX - suffix.len() - 1);
        Self(format!("{}-{suffix}", &self.0[..keep]))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy: 8–128 characters with upper, lower and a digit.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// # Errors
    /// [`ValueError`] naming `field` when the policy is not met.
    pub fn parse_new(field: &'static str, raw: &str) -> Result<Self, ValueError> {
        let length = raw.chars().count();
        if !(8..=128).contains(&length) {
            return refuse(field, "length", "must be 8-128 characters");
        }
        let upper = raw.chars().any(char::is_uppercase);
        let lower = raw.chars().any(char::is_lowercase);
        let digit = raw.chars().any(|c| c.is_ascii_digit());
        if upper && lower && digit {
            Ok(Self(raw.to_owned()))
        } else {
            refuse(
                field,
                "pattern",
                "must contain an uppercase letter, a lowercase letter and a digit",
            )
        }
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A first or last name: 2–50 letters, spaces, `-` or `'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// # Errors
    /// [`ValueError`] naming `field` when the value breaks the rule.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim();
        let length = name.chars().count();
        if !(2..=50).contains(&length) {
            return refuse(field, "length", "must be 2-50 characters");
        }
        if name
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'')
        {
            Ok(Self(name.to_owned()))
        } else {
            refuse(
                field,
                "pattern",
                "may contain only letters, spaces, hyphens and apostrophes",
            )
        }
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A display name: 2–50 printable characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// # Errors
    /// [`ValueError`] naming `field` when the value breaks the rule.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValueError> {
        let name = raw.trim();
        let length = name.chars().count();
        if !(2..=50).contains(&length) {
            return refuse(field, "length", "must be 2-50 characters");
        }
        if name.chars().any(char::is_control) {
            return refuse(field, "pattern", "must not contain control characters");
        }
        Ok(Self(name.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An absolute http(s) URL of at most 200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebsiteUrl(String);

impl WebsiteUrl {
    /// # Errors
    /// [`ValueError`] naming `field` unless the value is an http or https URL with a host.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValueError> {
        let url = raw.trim();
        if url.len() > 200 {
            return refuse(field, "length", "must be at most 200 characters");
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        match host {
            Some(host)
                if !host.is_empty()
                    && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Ok(Self(url.to_owned()))
            }
            _ => refuse(field, "url", "must be an http or https URL"),
        }
    }

    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_to_one_case() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").map(|e| e.0),
            Ok("ada@example.com".to_owned())
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
            "ada@example.com.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_upper_lower_and_digit() {
        assert!(Password::parse_new("password", "Secret123").is_ok());
        for bad in [
            "short1A",
            "alllowercase1",
            "ALLUPPERCASE1",
            "NoDigitsHere",
            &"Aa1".repeat(50),
        ] {
            assert!(Password::parse_new("password", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_are_lowercased_and_limited_to_the_safe_alphabet() {
        assert_eq!(
            Username::parse("Ada_L-1").map(|u| u.0),
            Ok("ada_l-1".to_owned())
        );
        for bad in ["ab", "has space", "dot.ted", &"a".repeat(31)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_usernames_are_valid_even_from_odd_local_parts() {
        for raw in [
            "a@x.io",
            "first.last+tag@x.io",
            "ÄÖÜ@x.io",
            &format!("{}@x.io", "z".repeat(60)),
        ] {
            let email = Email::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let derived = Username::derive_from(&email);
            assert!(
                Username::parse(derived.as_str()).is_ok(),
                "{raw} -> {}",
                derived.as_str()
            );
            assert!(Username::parse(derived.with_suffix(123_456).as_str()).is_ok());
        }
    }

    #[test]
    fn names_allow_letters_spaces_hyphens_apostrophes_only() {
        assert!(PersonName::parse("firstName", "Mary-Jane O'Neil").is_ok());
        assert!(PersonName::parse("firstName", "Zoë").is_ok());
        assert!(PersonName::parse("firstName", "R2D2").is_err());
        assert!(PersonName::parse("firstName", "A").is_err());
    }

    #[test]
    fn websites_must_be_http_or_https() {
        assert!(WebsiteUrl::parse("website", "https://ada.dev/about").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x.io",
            "https://",
            "ada.dev",
            "https://a b.dev",
        ] {
            assert!(WebsiteUrl::parse("website", bad).is_err(), "{bad}");
        }
    }
}
