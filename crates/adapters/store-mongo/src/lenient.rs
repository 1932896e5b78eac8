//! Readers for values other writers stored in other shapes. The NestJS version left documents
//! with missing fields and string ids, and some MongoDB-compatible servers store a `$set`
//! boolean as `0`/`1` and a date as its ISO string (docs/mongodb-stand-in.md). Each reader
//! accepts every shape that means the value, and reads anything else as absent, so one odd
//! field never makes a whole document unreadable.

use chrono::{DateTime, NaiveDateTime};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime as BsonTime};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A boolean, also from `0`/`1` and `"true"`/`"false"`.
#[must_use]
pub fn flag_of(value: &Bson) -> Option<bool> {
    match value {
        Bson::Boolean(flag) => Some(*flag),
        Bson::Int32(n) => Some(*n != 0),
        Bson::Int64(n) => Some(*n != 0),
        Bson::Double(n) => Some(*n != 0.0),
        Bson::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// A date, also from epoch milliseconds, an RFC 3339 string, or the `2026-01-02
/// 12:00:00.123000` (UTC) string nx-27017 stores for a `$set` date.
#[must_use]
pub fn date_of(value: &Bson) -> Option<BsonTime> {
    let millis = match value {
        Bson::DateTime(at) => return Some(*at),
        Bson::Int64(millis) => *millis,
        Bson::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| at.timestamp_millis())
            .or_else(|_| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                    .map(|at| at.and_utc().timestamp_millis())
            })
            .ok()?,
        _ => return None,
    };
    Some(BsonTime::from_millis(millis))
}

/// An id stored as an ObjectId or as its 24-hex string.
#[must_use]
pub fn id_of(value: &Bson) -> Option<ObjectId> {
    match value {
        Bson::ObjectId(id) => Some(*id),
        Bson::String(text) => ObjectId::parse_str(text).ok(),
        _ => None,
    }
}

/// `#[serde(default, deserialize_with = "lenient::flag")]` on an `Option<bool>`.
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(Option::<Bson>::deserialize(deserializer)?
        .as_ref()
        .and_then(flag_of))
}

/// `#[serde(default, deserialize_with = "lenient::date")]` on an `Option<BsonTime>`.
pub fn date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<BsonTime>, D::Error> {
    Ok(Option::<Bson>::deserialize(deserializer)?
        .as_ref()
        .and_then(date_of))
}

/// `#[serde(deserialize_with = "lenient::id")]` on a required `ObjectId` reference: a
/// reference that is neither spelling is a broken document, and says so.
pub fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectId, D::Error> {
    let raw = Bson::deserialize(deserializer)?;
    id_of(&raw).ok_or_else(|| D::Error::custom(format!("not an id: {raw}")))
}

/// `#[serde(default, deserialize_with = "lenient::text")]` on an `Option<String>`: a value of
/// another type reads as absent.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Bson>::deserialize(deserializer)? {
        Some(Bson::String(text)) => Some(text),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_from_every_spelling_servers_store() {
        for (stored, expected) in [
            (Bson::Boolean(true), Some(true)),
            (Bson::Int32(0), Some(false)),
            (Bson::Int64(1), Some(true)),
            (Bson::String("false".into()), Some(false)),
            (Bson::String("yes".into()), None),
            (Bson::Null, None),
        ] {
            assert_eq!(flag_of(&stored), expected, "{stored}");
        }
    }

    #[test]
    fn dates_read_from_their_iso_strings_and_milliseconds() {
        let at = BsonTime::from_millis(1_700_000_000_123);
        assert_eq!(date_of(&Bson::DateTime(at)), Some(at));
        assert_eq!(
            date_of(&Bson::String("2023-11-14T22:13:20.123Z".into())),
            Some(at)
        );
        assert_eq!(
            date_of(&Bson::String("2023-11-14T22:13:20.123+00:00".into())),
            Some(at)
        );
        assert_eq!(
            date_of(&Bson::String("2023-11-14 22:13:20.123000".into())),
            Some(at)
        );
        assert_eq!(
            date_of(&Bson::String("2023-11-14 22:13:20".into())),
            Some(BsonTime::from_millis(1_700_000_000_000))
        );
        assert_eq!(date_of(&Bson::Int64(1_700_000_000_123)), Some(at));
        assert_eq!(date_of(&Bson::String("last tuesday".into())), None);
    }

    #[test]
    fn ids_read_from_both_spellings() {
        let id = ObjectId::new();
        assert_eq!(id_of(&Bson::ObjectId(id)), Some(id));
        assert_eq!(id_of(&Bson::String(id.to_hex())), Some(id));
        assert_eq!(id_of(&Bson::String("42".into())), None);
    }
}
