//! The stored shape of each collection, and conversions to and from the domain.

use auth_core::model::{
    Account, AccountId, Coordinates, DeviceInfo, GeoLocation, Role, Session, SessionId,
    StoredToken, User, UserId,
};
use chrono::{DateTime, Utc};
use kernel::StoreError;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{self, Bson, DateTime as BsonTime};
use serde::{Deserialize, Deserializer, Serialize};

use crate::lenient;

pub fn oid(id: &str) -> Result<ObjectId, StoreError> {
    ObjectId::parse_str(id).map_err(StoreError::backend)
}

pub fn time(at: DateTime<Utc>) -> BsonTime {
    BsonTime::from_chrono(at)
}

fn parse<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, kernel::ParseIdError>,
) -> Result<T, StoreError> {
    parse(raw).map_err(StoreError::backend)
}

/// A stored date, or the creation time the document's ObjectId carries when it has none.
fn created(at: Option<BsonTime>, id: &ObjectId) -> DateTime<Utc> {
    at.unwrap_or_else(|| id.timestamp()).to_chrono()
}

/// A `users` document. Documents the NestJS version wrote may lack `username` (its
/// registration did not ask for one) and never have `email` (it lived on the account only):
/// both are optional here, and the repository completes them (`identity.rs`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(default, deserialize_with = "lenient::text")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub avatar: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub bio: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub location: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub website: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub last_login_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub created_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub updated_at: Option<BsonTime>,
}

impl UserDoc {
    pub fn from_domain(u: &User) -> Result<Self, StoreError> {
        Ok(Self {
            id: oid(u.id.as_str())?,
            username: Some(u.username.clone()),
            email: Some(u.email.clone()),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            display_name: u.display_name.clone(),
            avatar: u.avatar.clone(),
            role: Some(u.role.as_str().to_owned()),
            bio: u.bio.clone(),
            location: u.location.clone(),
            website: u.website.clone(),
            is_active: Some(u.is_active),
            last_login_at: u.last_login_at.map(time),
            created_at: Some(time(u.created_at)),
            updated_at: Some(time(u.updated_at)),
        })
    }

    /// The user, with `email` when the document has none (its account's address). A missing
    /// username reads as empty: not assigned yet.
    pub fn into_domain(self, email: Option<String>) -> Result<User, StoreError> {
        let created_at = created(self.created_at, &self.id);
        Ok(User {
            id: parse(&self.id.to_hex(), UserId::parse)?,
            username: self.username.unwrap_or_default(),
            email: self.email.or(email).unwrap_or_default().to_lowercase(),
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            avatar: self.avatar,
            role: Role::from_stored(self.role.as_deref().unwrap_or_default()),
            bio: self.bio,
            location: self.location,
            website: self.website,
            is_active: self.is_active.unwrap_or(true),
            last_login_at: self.last_login_at.map(BsonTime::to_chrono),
            created_at,
            updated_at: self.updated_at.map_or(created_at, BsonTime::to_chrono),
        })
    }
}

/// An `accounts` document. An account of the NestJS version's OAuth sign-in has no password,
/// and its `userId` may be a string.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(deserialize_with = "lenient::id")]
    pub user_id: ObjectId,
    pub email: String,
    /// The argon2 PHC hash (the NestJS schema named this field `password`).
    #[serde(default, deserialize_with = "lenient::text")]
    pub password: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub email_verified: Option<bool>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub email_verification_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub email_verification_expires: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub password_reset_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub password_reset_expires: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub account_deletion_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub account_deletion_expires: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub account_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub created_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub updated_at: Option<BsonTime>,
}

fn token_of(hash: Option<String>, expires: Option<BsonTime>) -> Option<StoredToken> {
    Some(StoredToken {
        hash: hash?,
        expires_at: expires?.to_chrono(),
    })
}

impl AccountDoc {
    pub fn from_domain(a: &Account) -> Result<Self, StoreError> {
        Ok(Self {
            id: oid(a.id.as_str())?,
            user_id: oid(a.user_id.as_str())?,
            email: a.email.clone(),
            password: Some(a.password_hash.clone()).filter(|hash| !hash.is_empty()),
            email_verified: Some(a.email_verified),
            email_verification_token: a.email_verification.as_ref().map(|t| t.hash.clone()),
            email_verification_expires: a.email_verification.as_ref().map(|t| time(t.expires_at)),
            password_reset_token: a.password_reset.as_ref().map(|t| t.hash.clone()),
            password_reset_expires: a.password_reset.as_ref().map(|t| time(t.expires_at)),
            account_deletion_token: a.account_deletion.as_ref().map(|t| t.hash.clone()),
            account_deletion_expires: a.account_deletion.as_ref().map(|t| time(t.expires_at)),
            account_type: Some("email".to_owned()),
            is_active: Some(a.is_active),
            created_at: Some(time(a.created_at)),
            updated_at: Some(time(a.updated_at)),
        })
    }

    /// The account; an address stored with capitals reads in lower case, as every address
    /// is compared, and a missing password reads as empty (no password login).
    pub fn into_domain(self) -> Result<Account, StoreError> {
        let created_at = created(self.created_at, &self.id);
        Ok(Account {
            id: parse(&self.id.to_hex(), AccountId::parse)?,
            user_id: parse(&self.user_id.to_hex(), UserId::parse)?,
            email: self.email.to_lowercase(),
            password_hash: self.password.unwrap_or_default(),
            email_verified: self.email_verified.unwrap_or(false),
            email_verification: token_of(
                self.email_verification_token,
                self.email_verification_expires,
            ),
            password_reset: token_of(self.password_reset_token, self.password_reset_expires),
            account_deletion: token_of(self.account_deletion_token, self.account_deletion_expires),
            is_active: self.is_active.unwrap_or(true),
            created_at,
            updated_at: self.updated_at.map_or(created_at, BsonTime::to_chrono),
        })
    }
}

/// A session's location, in the NestJS version's shape: `{country, region, city, coordinates,
/// timezone, isp}` plus `countryCode`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationDoc {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub coordinates: Option<CoordinatesDoc>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub isp: Option<String>,
}

/// Also reads the short names ip-api.com answers with, which older documents may carry.
#[derive(Debug, Serialize, Deserialize)]
pub struct CoordinatesDoc {
    #[serde(alias = "lat")]
    pub latitude: f64,
    #[serde(alias = "lon")]
    pub longitude: f64,
}

impl LocationDoc {
    pub fn from_domain(location: &GeoLocation) -> Self {
        Self {
            country: location.country.clone(),
            country_code: location.country_code.clone(),
            region: location.region.clone(),
            city: location.city.clone(),
            coordinates: location.coordinates.map(|c| CoordinatesDoc {
                latitude: c.latitude,
                longitude: c.longitude,
            }),
            timezone: location.timezone.clone(),
            isp: location.isp.clone(),
        }
    }

    fn into_domain(self) -> GeoLocation {
        GeoLocation {
            country: self.country,
            country_code: self.country_code,
            region: self.region,
            city: self.city,
            coordinates: self.coordinates.map(|c| Coordinates {
                latitude: c.latitude,
                longitude: c.longitude,
            }),
            timezone: self.timezone,
            isp: self.isp,
        }
    }
}

/// A location of another shape (a plain string, say) reads as unknown: it is shown, never
/// relied on, and must not make the whole session unreadable.
fn lenient_location<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<LocationDoc>, D::Error> {
    let raw = Option::<Bson>::deserialize(deserializer)?;
    Ok(raw.and_then(|raw| bson::from_bson(raw).ok()))
}

/// A `sessions` document. The NestJS version's sessions have no refresh-token hash (its
/// tokens were not stored), so they cannot be refreshed; device fields may be missing.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[serde(deserialize_with = "lenient::id")]
    pub user_id: ObjectId,
    #[serde(deserialize_with = "lenient::id")]
    pub account_id: ObjectId,
    #[serde(default, deserialize_with = "lenient::text")]
    pub user_agent: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub ip_address: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub device_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub device_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub browser: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub os: Option<String>,
    #[serde(default, deserialize_with = "lenient_location")]
    pub location: Option<LocationDoc>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub refresh_token_hash: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub previous_refresh_token_hash: Option<String>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub rotated_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub last_activity_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub expires_at: Option<BsonTime>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub created_at: Option<BsonTime>,
}

impl SessionDoc {
    pub fn from_domain(s: &Session) -> Result<Self, StoreError> {
        Ok(Self {
            id: oid(s.id.as_str())?,
            user_id: oid(s.user_id.as_str())?,
            account_id: oid(s.account_id.as_str())?,
            user_agent: s.user_agent.clone(),
            ip_address: s.ip_address.clone(),
            device_type: Some(s.device.device_type.clone()),
            device_name: Some(s.device.device_name.clone()),
            browser: Some(s.device.browser.clone()),
            os: Some(s.device.os.clone()),
            location: s.location.as_ref().map(LocationDoc::from_domain),
            is_active: Some(s.is_active),
            refresh_token_hash: Some(s.refresh_hash.clone()),
            previous_refresh_token_hash: s.previous_refresh_hash.clone(),
            rotated_at: s.rotated_at.map(time),
            last_activity_at: Some(time(s.last_activity_at)),
            expires_at: Some(time(s.expires_at)),
            created_at: Some(time(s.created_at)),
        })
    }

    /// The session; one without an expiry reads as expired, one without a refresh-token hash
    /// as not refreshable.
    pub fn into_domain(self) -> Result<Session, StoreError> {
        let created_at = created(self.created_at, &self.id);
        Ok(Session {
            id: parse(&self.id.to_hex(), SessionId::parse)?,
            user_id: parse(&self.user_id.to_hex(), UserId::parse)?,
            account_id: parse(&self.account_id.to_hex(), AccountId::parse)?,
            user_agent: self.user_agent,
            ip_address: self.ip_address,
            device: DeviceInfo {
                device_type: self.device_type.unwrap_or_default(),
                device_name: self.device_name.unwrap_or_default(),
                browser: self.browser.unwrap_or_default(),
                os: self.os.unwrap_or_default(),
            },
            location: self.location.map(LocationDoc::into_domain),
            is_active: self.is_active.unwrap_or(true),
            refresh_hash: self.refresh_token_hash.unwrap_or_default(),
            previous_refresh_hash: self.previous_refresh_token_hash,
            rotated_at: self.rotated_at.map(BsonTime::to_chrono),
            last_activity_at: self
                .last_activity_at
                .map_or(created_at, BsonTime::to_chrono),
            expires_at: self.expires_at.map_or(created_at, BsonTime::to_chrono),
            created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{Bson, doc};

    use super::*;

    fn session_with(location: Bson) -> Result<Session, StoreError> {
        let now = BsonTime::now();
        let stored = doc! {
            "_id": ObjectId::new(), "userId": ObjectId::new(), "accountId": ObjectId::new(),
            "userAgent": Bson::Null, "ipAddress": "81.2.69.142",
            "deviceType": "desktop", "deviceName": "Mac", "browser": "Safari 17.4", "os": "macOS 14",
            "location": location, "isActive": true, "refreshTokenHash": "h",
            "lastActivityAt": now, "expiresAt": now, "createdAt": now,
        };
        bson::from_document::<SessionDoc>(stored)
            .map_err(StoreError::backend)?
            .into_domain()
    }

    #[test]
    fn nestjs_session_locations_read_with_their_short_coordinate_names() {
        let session = session_with(Bson::Document(doc! {
            "country": "United Kingdom", "region": "England", "city": "London",
            "coordinates": { "lat": 51.5142, "lon": -0.0931 },
            "timezone": "Europe/London", "isp": "Andrews & Arnold",
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let location = session.location.unwrap_or_default();
        assert_eq!(location.city.as_deref(), Some("London"));
        assert_eq!(location.country_code, None);
        assert_eq!(
            location.coordinates,
            Some(Coordinates {
                latitude: 51.5142,
                longitude: -0.0931
            })
        );
    }

    #[test]
    fn a_location_of_another_shape_reads_as_unknown() {
        for odd in [Bson::String("London".into()), Bson::Null, Bson::Int32(3)] {
            let session = session_with(odd.clone()).unwrap_or_else(|e| panic!("{odd}: {e}"));
            assert_eq!(session.location, None, "{odd}");
        }
    }
}
