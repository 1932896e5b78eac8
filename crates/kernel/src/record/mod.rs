//! Records: maps of typed values described by a static schema. Every client-editable document
//! (portfolio items, the portfolio profile, preference sets) is a record, so validation,
//! storage and rendering follow one path whatever the resource.
//!
//! A `Schema` is a static list of `FieldSpec`s (kind, limits, required, preset, read-only,
//! public); `Schema::create` and `Schema::patch` check an untyped `Input` and name every bad field.
//! A client value reaches a store only through a schema, and an object is never accepted where a
//! value is expected, so operator-shaped input (`{"$ne": null}`) cannot become a query.
//!
//! `schema.rs` holds the field kinds and `Schema`'s checks; `parse.rs` turns one client value
//! into a typed one (and judges dates and URLs, which the wire formats share).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

mod parse;
mod schema;

pub use parse::{is_web_url, parse_date};
pub use schema::{Access, FieldError, FieldKind, FieldSpec, Preset, Schema};

/// A stored value. Dates are instants (a bare date means midnight UTC).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Date(DateTime<Utc>),
    List(Vec<String>),
    /// The id of another record (an ObjectId-shaped string).
    Ref(String),
}

impl Value {
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) | Self::Ref(text) => Some(text),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(flag) => Some(*flag),
            _ => None,
        }
    }
}

/// A value as a client sent it, before the schema has looked at it. Objects carry nothing:
/// no field accepts one, so `{"$ne": null}` is refused rather than interpreted.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Input>),
    Object,
}

/// Typed values by field name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(BTreeMap<String, Value>);

impl Record {
    #[must_use]
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|value| **value != Value::Null)
    }

    pub fn set(&mut self, field: &str, value: Value) {
        self.0.insert(field.to_owned(), value);
    }

    /// Drops `field` from this record (from a set of changes: leaves it unchanged).
    pub fn remove(&mut self, field: &str) {
        self.0.remove(field);
    }

    /// Applies `changes`: fields set to [`Value::Null`] are cleared.
    pub fn merge(&mut self, changes: Record) {
        for (field, value) in changes.0 {
            if value == Value::Null {
                self.0.remove(&field);
            } else {
                self.0.insert(field, value);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0
            .iter()
            .filter(|(_, value)| **value != Value::Null)
            .map(|(field, value)| (field.as_str(), value))
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names of every field this record sets or clears: as changes, the fields a write
    /// touches.
    #[must_use]
    pub fn names(&self) -> FieldNames {
        self.0.keys().cloned().collect()
    }
}

/// The fields one write changes. A store leaves every other stored field as it is, those it
/// cannot read included (another version's, or one stored in another shape).
pub type FieldNames = std::collections::BTreeSet<String>;

impl FromIterator<(String, Value)> for Record {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Bookkeeping every stored record shows and only the server writes.
pub const SERVER_OWNED: &[&str] = &[
    "id",
    "userId",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "order",
];
