//! Request and response bodies of the identity routes. Requests deny unknown fields and are
//! validated with garde, whose custom rules call the domain's own parsers so that each rule is
//! written once; responses are typed so that the OpenAPI document describes them.

use auth_core::model::{GeoLocation, ProfileChanges, Session, UserView};
use auth_core::{
    AuthOutcome, DisplayName, Email, Password, PersonName, Registration, Username, ValueError,
    WebsiteUrl,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};

use crate::openapi_patterns::{self, blank_or, class, solid, trimmed, trimmed_length};
use crate::problem::ApiError;

impl From<ValueError> for ApiError {
    fn from(error: ValueError) -> Self {
        Self::field(error.field, "invalid", error.message)
    }
}

fn check<T>(parsed: Result<T, ValueError>) -> garde::Result {
    parsed
        .map(drop)
        .map_err(|e| garde::Error::new(crate::body::ruled_message(e.rule, e.message)))
}

fn valid_email(value: &str, (): &()) -> garde::Result {
    check(Email::parse(value))
}

fn valid_new_password(value: &str, (): &()) -> garde::Result {
    check(Password::parse_new("password", value))
}

fn valid_display_name(value: &str, (): &()) -> garde::Result {
    check(DisplayName::parse("name", value))
}

fn valid_optional_username(value: &Option<String>, (): &()) -> garde::Result {
    value
        .as_deref()
        .map_or(Ok(()), |v| check(Username::parse(v)))
}

/// Profile fields: absent leaves a field, `""` or `null` clears it, anything else must be valid.
fn clearable(
    value: &Option<String>,
    parse: impl Fn(&str) -> Result<(), ValueError>,
) -> garde::Result {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(()),
        Some(v) => check(parse(v)),
    }
}

fn valid_person_name(value: &Option<String>, (): &()) -> garde::Result {
    clearable(value, |v| PersonName::parse("name", v).map(drop))
}

fn valid_optional_display_name(value: &Option<String>, (): &()) -> garde::Result {
    clearable(value, |v| DisplayName::parse("displayName", v).map(drop))
}

fn valid_website(value: &Option<String>, (): &()) -> garde::Result {
    clearable(value, |v| WebsiteUrl::parse("website", v).map(drop))
}

fn valid_text<const MAX: usize>(value: &Option<String>, (): &()) -> garde::Result {
    clearable(value, |v| {
        if v.chars().count() > MAX {
            Err(ValueError {
                field: "text",
                rule: "length",
                message: "is too long",
            })
        } else {
            Ok(())
        }
    })
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    #[garde(custom(valid_display_name))]
    #[schema(schema_with = display_name_schema)]
    pub name: String,
    #[garde(custom(valid_email))]
    #[schema(schema_with = email_schema)]
    pub email: String,
    #[garde(custom(valid_new_password))]
    #[schema(schema_with = new_password_schema)]
    pub password: String,
    #[garde(custom(valid_optional_username))]
    #[schema(schema_with = username_schema)]
    pub username: Option<String>,
}

impl RegisterRequest {
    /// # Errors
    /// A validation error (not reachable after garde, kept as the domain's guard).
    pub fn into_domain(self) -> Result<Registration, ApiError> {
        Ok(Registration {
            name: DisplayName::parse("name", &self.name)?,
            email: Email::parse(&self.email)?,
            password: Password::parse_new("password", &self.password)?,
            username: self.username.as_deref().map(Username::parse).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    #[garde(custom(valid_email))]
    #[schema(schema_with = email_schema)]
    pub email: String,
    #[garde(length(chars, min = 1, max = 256))]
    #[schema(example = "Analytical1", min_length = 1, max_length = 256)]
    pub password: String,
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    #[garde(length(chars, min = 1, max = 4096))]
    #[schema(min_length = 1, max_length = 4096)]
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForgotPasswordRequest {
    #[garde(custom(valid_email))]
    #[schema(schema_with = email_schema)]
    pub email: String,
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetPasswordRequest {
    /// The token from the reset link.
    #[garde(length(chars, min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
    #[garde(custom(valid_new_password))]
    #[schema(schema_with = new_password_schema)]
    pub password: String,
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyEmailRequest {
    /// The token from the verification link.
    #[garde(length(chars, min = 1, max = 512))]
    #[schema(min_length = 1, max_length = 512)]
    pub token: String,
}

#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    #[garde(length(chars, min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub current_password: String,
    #[garde(custom(valid_new_password))]
    #[schema(schema_with = new_password_schema)]
    pub new_password: String,
}

/// Absent fields stay as they are; `null` or a blank string clears a field. The other fields
/// of the user object (`GET /auth/me`) may be sent back unchanged; they are ignored.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    #[garde(custom(valid_person_name))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = person_name_schema)]
    pub first_name: Option<String>,
    #[garde(custom(valid_person_name))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = person_name_schema)]
    pub last_name: Option<String>,
    #[garde(custom(valid_optional_display_name))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = clearable_display_name_schema)]
    pub display_name: Option<String>,
    #[garde(custom(valid_text::<500>))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = bio_schema)]
    pub bio: Option<String>,
    #[garde(custom(valid_text::<100>))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = location_schema)]
    pub location: Option<String>,
    #[garde(custom(valid_website))]
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = website_schema)]
    pub website: Option<String>,
}

/// Marks a field that was present (even as `null`) by turning `null` into `Some("")`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(
        Option::<String>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

impl crate::body::ReadBack for UpdateProfileRequest {
    /// The rest of [`UserDto`]: what `GET /auth/me` shows and this route does not change.
    const SERVER_OWNED: &'static [&'static str] = &[
        "id",
        "username",
        "email",
        "emailVerified",
        "avatar",
        "role",
        "isActive",
        "lastLoginAt",
        "createdAt",
        "updatedAt",
    ];
}

impl UpdateProfileRequest {
    #[must_use]
    pub fn into_domain(self) -> ProfileChanges {
        let change = |value: Option<String>| {
            value.map(|v| {
                let trimmed = v.trim().to_owned();
                (!trimmed.is_empty()).then_some(trimmed)
            })
        };
        ProfileChanges {
            first_name: change(self.first_name),
            last_name: change(self.last_name),
            display_name: change(self.display_name),
            bio: change(self.bio),
            location: change(self.location),
            website: change(self.website),
            avatar: None,
        }
    }
}

// The OpenAPI schemas of the fields above: each describes exactly what the garde rule beside it
// (and the domain parser it calls) accepts, so that a generated request is refused only when
// it breaks the pattern.

fn text_schema(nullable: bool, pattern: String, description: &str) -> ObjectBuilder {
    let kind = if nullable {
        [Type::String, Type::Null].into_iter().collect()
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .pattern(Some(pattern))
        .description(Some(description))
}

fn no_control(c: char) -> bool {
    !c.is_control()
}

fn solid_no_control(c: char) -> bool {
    solid(c) && no_control(c)
}

/// `DisplayName`: 2–50 characters once trimmed, no control characters.
fn display_name_schema() -> ObjectBuilder {
    text_schema(
        false,
        trimmed_length(no_control, solid_no_control, 2, 50),
        "2 to 50 characters without control characters; trimmed",
    )
    .examples(["Ada Lovelace"])
}

fn clearable_display_name_schema() -> ObjectBuilder {
    text_schema(
        true,
        blank_or(no_control, solid_no_control, 2, 50),
        "2 to 50 characters without control characters; trimmed; blank or `null` clears",
    )
}

/// `Email`: `local@domain` once trimmed, the domain dotted inside. Limits count bytes, so the
/// pattern keeps to printable ASCII, where bytes and characters agree.
fn email_schema() -> ObjectBuilder {
    let ws = class(char::is_whitespace);
    // Printable ASCII but `@`, and the same without `.`.
    let (part, edge) = ("!-?A-~", "!-\\-/-?A-~");
    text_schema(
        false,
        format!(
            "^[{ws}]*(?=[!-~]{{3,254}}[{ws}]*$)[{part}]{{1,64}}@[{edge}][{part}]*\\.[{part}]*[{edge}][{ws}]*$"
        ),
        "An email address of at most 254 characters; trimmed, compared without case",
    )
    .examples(["ada@example.com"])
}

/// `Password::parse_new`: 8–128 characters with an upper-case letter, a lower-case letter
/// and a digit (letters of any script). One shared schema, as the classes are large.
fn new_password_schema() -> Ref {
    Ref::from_schema_name(NEW_PASSWORD)
}

pub const NEW_PASSWORD: &str = "NewPassword";

#[must_use]
pub fn new_password_component() -> RefOr<Schema> {
    let any = openapi_patterns::ANY;
    let (upper, lower) = (class(char::is_uppercase), class(char::is_lowercase));
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .min_length(Some(8))
        .max_length(Some(128))
        .pattern(Some(format!(
            "^(?={any}*[{upper}])(?={any}*[{lower}])(?={any}*[0-9])"
        )))
        .description(Some(
            "8 to 128 characters with an upper-case letter, a lower-case letter and a digit",
        ))
        .examples(["Analytical1"])
        .into()
}

/// `Username`: 3–30 of `a-z 0-9 _ -` once trimmed and lower-cased.
fn username_schema() -> ObjectBuilder {
    fn lowers_to_allowed(c: char) -> bool {
        let mut lower = c.to_lowercase();
        matches!((lower.next(), lower.next()), (Some(l), None)
            if l.is_ascii_lowercase() || l.is_ascii_digit() || l == '_' || l == '-')
    }
    let allowed = class(lowers_to_allowed);
    text_schema(
        true,
        trimmed(&format!("[{allowed}]{{3,30}}")),
        "3 to 30 of a-z, 0-9, `_` and `-` (compared without case); derived from the email when absent",
    )
    .examples(["ada"])
}

/// `PersonName`, or blank to clear. One shared schema, as the letter class is large.
fn person_name_schema() -> Ref {
    Ref::from_schema_name(PERSON_NAME)
}

pub const PERSON_NAME: &str = "PersonName";

#[must_use]
pub fn person_name_component() -> RefOr<Schema> {
    fn name_character(c: char) -> bool {
        c.is_alphabetic() || c == '-' || c == '\''
    }
    // The letter class is large (a generator pays for each member each time it reads it), so
    // it is spelled once, spaces beside it, with neither end a space.
    let letters = class(name_character);
    text_schema(
        true,
        trimmed(&format!("(?:(?! )(?:[{letters}]| ){{2,50}}(?<! ))?")),
        "2 to 50 letters, spaces, `-` and `'`; trimmed; blank or `null` clears",
    )
    .into()
}

fn bio_schema() -> ObjectBuilder {
    text_schema(
        true,
        trimmed_length(|_| true, solid, 0, 500),
        "At most 500 characters once trimmed; blank or `null` clears",
    )
}

fn location_schema() -> ObjectBuilder {
    text_schema(
        true,
        trimmed_length(|_| true, solid, 0, 100),
        "At most 100 characters once trimmed; blank or `null` clears",
    )
}

/// `WebsiteUrl`: an http(s) URL with a host and no whitespace or control characters, at most
/// 200 bytes, so the pattern keeps to printable ASCII.
fn website_schema() -> ObjectBuilder {
    let ws = class(char::is_whitespace);
    text_schema(
        true,
        format!(
            "^[{ws}]*(?:http://[!-\"$-.0->@-~][!-~]{{0,192}}|https://[!-\"$-.0->@-~][!-~]{{0,191}})?[{ws}]*$"
        ),
        "An http(s) URL of at most 200 characters; trimmed; blank or `null` clears",
    )
}

/// A user, as every route shows it. Never a password, hash or token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    #[schema(example = "6650c0ffee0000000000abcd")]
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    #[schema(example = "user")]
    pub role: &'static str,
    pub bio: Option<String>,
    pub location: Option<String>,
    pub website: Option<String>,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserView> for UserDto {
    fn from(view: UserView) -> Self {
        let u = view.user;
        Self {
            id: u.id.to_string(),
            username: u.username,
            email: u.email,
            email_verified: view.email_verified,
            first_name: u.first_name,
            last_name: u.last_name,
            display_name: u.display_name,
            avatar: u.avatar,
            role: u.role.as_str(),
            bio: u.bio,
            location: u.location,
            website: u.website,
            is_active: u.is_active,
            last_login_at: u.last_login_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// Tokens and the user, after register, login or refresh.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthData {
    pub access_token: String,
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    pub user: UserDto,
}

impl From<AuthOutcome> for AuthData {
    fn from(outcome: AuthOutcome) -> Self {
        Self {
            access_token: outcome.tokens.access_token,
            refresh_token: outcome.tokens.refresh_token,
            token_type: "Bearer",
            expires_in: outcome.tokens.expires_in,
            user: outcome.user.into(),
        }
    }
}

/// Approximate coordinates of a place.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoordinatesDto {
    #[schema(example = 51.5142)]
    pub latitude: f64,
    #[schema(example = -0.0931)]
    pub longitude: f64,
}

/// Where a session's IP address is, as far as the geolocation source knows; each part may be
/// null. The NestJS version's shape, plus `countryCode`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationDto {
    #[schema(example = "United Kingdom")]
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "GB")]
    pub country_code: Option<String>,
    #[schema(example = "England")]
    pub region: Option<String>,
    #[schema(example = "London")]
    pub city: Option<String>,
    pub coordinates: Option<CoordinatesDto>,
    /// IANA time zone.
    #[schema(example = "Europe/London")]
    pub timezone: Option<String>,
    pub isp: Option<String>,
}

impl From<GeoLocation> for LocationDto {
    fn from(l: GeoLocation) -> Self {
        Self {
            country: l.country,
            country_code: l.country_code,
            region: l.region,
            city: l.city,
            coordinates: l.coordinates.map(|c| CoordinatesDto {
                latitude: c.latitude,
                longitude: c.longitude,
            }),
            timezone: l.timezone,
            isp: l.isp,
        }
    }
}

/// A device session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: String,
    /// `desktop`, `mobile`, `tablet`, `bot`, `appliance` or `unknown`.
    #[schema(example = "desktop")]
    pub device_type: String,
    #[schema(example = "Mac")]
    pub device_name: String,
    /// The browser and its version as people know them.
    #[schema(example = "Chrome 124")]
    pub browser: String,
    /// The operating system and its version as people know them.
    #[schema(example = "macOS 14")]
    pub os: String,
    pub ip_address: Option<String>,
    /// Looked up shortly after sign-in; null until then, when geolocation is off, or when the
    /// address names no place (private networks).
    pub location: Option<LocationDto>,
    pub last_activity_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session of the calling token.
    pub current: bool,
}

impl From<(Session, bool)> for SessionDto {
    fn from((s, current): (Session, bool)) -> Self {
        Self {
            id: s.id.to_string(),
            device_type: s.device.device_type,
            device_name: s.device.device_name,
            browser: s.device.browser,
            os: s.device.os,
            ip_address: s.ip_address,
            location: s.location.map(LocationDto::from),
            last_activity_at: s.last_activity_at,
            created_at: s.created_at,
            expires_at: s.expires_at,
            current,
        }
    }
}

/// How many sessions a bulk revocation ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedCount {
    pub revoked: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documented(schema: ObjectBuilder, value: &str) -> bool {
        let schema = serde_json::to_value(schema.build()).unwrap_or_default();
        schema["pattern"]
            .as_str()
            .and_then(|pattern| regex::Regex::new(pattern).ok())
            .is_some_and(|regex| regex.is_match(value))
    }

    const SAMPLES: [&str; 22] = [
        "",
        " ",
        "a",
        "ab",
        " Ada ",
        "Ada Lovelace",
        "ADA_99",
        "a\u{212a}c",
        "ad a",
        "\u{1c}ab",
        "ab\u{0}",
        "\u{3000}ab\u{3000}",
        "éé",
        "http://x",
        " https://example.com/a?b#c ",
        "https://",
        "http://#x",
        "http://a b",
        "ftp://a.b",
        "http://é",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "abcdefghijklmnopqrstuvwxyz01234",
    ];

    #[test]
    fn the_documented_patterns_accept_exactly_what_the_identity_rules_accept() {
        type Rule = fn(&str) -> bool;
        type Documented = fn() -> ObjectBuilder;
        let cases: [(&str, Documented, Rule); 4] = [
            ("name", display_name_schema, |v| {
                valid_display_name(v, &()).is_ok()
            }),
            ("username", username_schema, |v| {
                valid_optional_username(&Some(v.to_owned()), &()).is_ok()
            }),
            ("bio", bio_schema, |v| {
                valid_text::<500>(&Some(v.to_owned()), &()).is_ok()
            }),
            ("website", website_schema, |v| {
                // Non-ASCII URLs are documented as refused (the limit counts bytes).
                v.is_ascii() && valid_website(&Some(v.to_owned()), &()).is_ok()
            }),
        ];
        for (name, schema, rule) in cases {
            for sample in SAMPLES {
                assert_eq!(
                    documented(schema(), sample),
                    rule(sample),
                    "{name}: {sample:?}"
                );
            }
        }
    }
}
