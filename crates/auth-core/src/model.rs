//! Identity records as the core sees them. Stores map these to their own documents or rows.

use chrono::{DateTime, Utc};

pub use kernel::UserId;
kernel::typed_id!(
    /// Identifies an account, the credentials of a user (the `accounts` collection).
    AccountId
);
kernel::typed_id!(
    /// Identifies a device session (the `sessions` collection).
    SessionId
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// Reads a stored role; anything unknown is the least privileged role.
    #[must_use]
    pub fn from_stored(raw: &str) -> Self {
        if raw == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// The person: profile fields and role. Credentials live on [`Account`].
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub avatar: Option<String>,
    pub role: Role,
    pub bio: Option<String>,
    pub location: Option<String>,
    pub website: Option<String>,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// How emails address the user: the display name, else the username.
    #[must_use]
    pub fn greeting(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.username.clone())
    }
}

/// A one-time token as stored: only its hash, and when it stops working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    pub hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Email + password credentials of a user, with the one-time tokens issued for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub user_id: UserId,
    pub email: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub email_verification: Option<StoredToken>,
    pub password_reset: Option<StoredToken>,
    /// The pending account-deletion confirmation, if any.
    pub account_deletion: Option<StoredToken>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a one-time token of an account is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    EmailVerification,
    PasswordReset,
    AccountDeletion,
}

/// What the user agent string says about the device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_type: String,
    pub device_name: String,
    pub browser: String,
    pub os: String,
}

/// Where a request came from, as the HTTP edge determined it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
}

/// Where on earth a point is, as a geolocation source estimates it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

/// Where an IP address is, as far as a geolocation source knows; every part may be missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeoLocation {
    pub country: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub coordinates: Option<Coordinates>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub isp: Option<String>,
}

impl GeoLocation {
    /// "City, Region, Country" with the parts that are known.
    #[must_use]
    pub fn label(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.city, &self.region, &self.country]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The country, for comparing two locations: the ISO code when known, else the name.
    #[must_use]
    pub fn country_key(&self) -> Option<String> {
        self.country_code
            .as_deref()
            .map(str::to_ascii_uppercase)
            .or_else(|| self.country.as_deref().map(str::to_lowercase))
    }
}

/// A device session: every token pair is bound to one. It stores the hash of the current
/// refresh token id, and the previous one for the reuse grace window.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub device: DeviceInfo,
    /// Looked up after the session opens; `None` until then, or when unknown.
    pub location: Option<GeoLocation>,
    pub is_active: bool,
    /// The digest of the current refresh token's jti; empty for a session another version
    /// opened (its refresh tokens were never stored), which cannot be refreshed.
    pub refresh_hash: String,
    pub previous_refresh_hash: Option<String>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub last_activity_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at > now
    }

    /// Whether a refresh token can be exchanged on this session at all.
    #[must_use]
    pub fn is_refreshable(&self, now: DateTime<Utc>) -> bool {
        self.is_live(now) && !self.refresh_hash.is_empty()
    }
}

/// A profile change: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub website: Option<Option<String>>,
    /// The URL of an uploaded picture (set by the avatar upload, never by a profile PATCH).
    pub avatar: Option<Option<String>>,
}

impl ProfileChanges {
    pub fn apply_to(&self, user: &mut User) {
        let pairs: [(&Option<Option<String>>, &mut Option<String>); 7] = [
            (&self.first_name, &mut user.first_name),
            (&self.last_name, &mut user.last_name),
            (&self.display_name, &mut user.display_name),
            (&self.bio, &mut user.bio),
            (&self.location, &mut user.location),
            (&self.website, &mut user.website),
            (&self.avatar, &mut user.avatar),
        ];
        for (change, field) in pairs {
            if let Some(value) = change {
                field.clone_from(value);
            }
        }
    }
}

/// The authenticated caller, as established from a live session's access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub email: String,
    pub role: Role,
}

/// A user as the API shows it: the user record plus the account's verification state.
#[derive(Clone, Debug, PartialEq)]
pub struct UserView {
    pub user: User,
    pub email_verified: bool,
}
