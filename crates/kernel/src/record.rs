//! Records: maps of typed values described by a static schema. Every client-editable document
//! (portfolio items, the portfolio profile, preference sets) is a record, so validation,
//! storage and rendering follow one path whatever the resource.
//!
//! A `Schema` is a static list of `FieldSpec`s (kind, limits, required, preset, read-only,
//! public); `Schema::create` and `Schema::patch` check an untyped `Input` and name every bad field.
//! A client value reaches a store only through a schema, and an object is never accepted where a
//! value is expected, so operator-shaped input (`{"$ne": null}`) cannot become a query.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};

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

/// What a field holds and which values it accepts.
#[derive(Clone, Copy, Debug)]
pub enum FieldKind {
    /// One line of text, `min..=max` characters after trimming.
    Text {
        min: usize,
        max: usize,
    },
    /// Free text of `min..=max` characters (line breaks kept).
    LongText {
        min: usize,
        max: usize,
    },
    /// An absolute http or https URL up to `max` characters.
    Url {
        max: usize,
    },
    /// `YYYY-MM-DD` or an RFC 3339 instant.
    Date,
    Integer {
        min: i64,
        max: i64,
    },
    Decimal {
        min: f64,
        max: f64,
    },
    Bool,
    /// Up to `max_items` strings of 1..=`max_len` characters.
    Tags {
        max_items: usize,
        max_len: usize,
    },
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// The id of a record of the named resource.
    Ref(&'static str),
}

/// A value a field takes when a record is created without it.
#[derive(Clone, Copy, Debug)]
pub enum Preset {
    Unset,
    Bool(bool),
    Int(i64),
    Text(&'static str),
}

/// Whether clients may write a field or only the domain does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Write,
    ReadOnly,
}

#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    pub preset: Preset,
    pub access: Access,
    /// Shown on the public portfolio.
    pub public: bool,
}

impl FieldSpec {
    /// An optional, client-writable, public field.
    #[must_use]
    pub const fn optional(name: &'static str, kind: FieldKind) -> Self {
        Self {
            name,
            kind,
            required: false,
            preset: Preset::Unset,
            access: Access::Write,
            public: true,
        }
    }

    #[must_use]
    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    #[must_use]
    pub const fn preset(self, preset: Preset) -> Self {
        Self { preset, ..self }
    }

    #[must_use]
    pub const fn read_only(self) -> Self {
        Self {
            access: Access::ReadOnly,
            ..self
        }
    }

    #[must_use]
    pub const fn private(self) -> Self {
        Self {
            public: false,
            ..self
        }
    }
}

/// One rejected field: `field` is its name, `code` a stable lower-case word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
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

/// The fields of one kind of record.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    pub fields: &'static [FieldSpec],
}

impl Schema {
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|spec| spec.name == name)
    }

    /// The record of presets alone.
    #[must_use]
    pub fn defaults(&self) -> Record {
        self.fields
            .iter()
            .filter_map(|spec| preset_value(spec.preset).map(|v| (spec.name.to_owned(), v)))
            .collect()
    }

    /// A new record from client input: unknown or read-only fields, missing required fields
    /// and bad values are all reported, one entry per field.
    ///
    /// # Errors
    /// Every [`FieldError`] found.
    pub fn create(&self, input: Vec<(String, Input)>) -> Result<Record, Vec<FieldError>> {
        let mut record = self.defaults();
        let mut errors = Vec::new();
        let changes = self.changes(input, &mut errors);
        for spec in self.fields.iter().filter(|spec| spec.required) {
            let given = changes.0.get(spec.name).is_some_and(|v| *v != Value::Null);
            if !given && !errors.iter().any(|e| e.field == spec.name) {
                errors.push(FieldError::new(spec.name, "required", "is required"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        record.merge(changes);
        Ok(record)
    }

    /// Changes to an existing record: like [`Schema::create`], but only the given fields are
    /// checked; `null` clears an optional field. What a client read and sends back although
    /// only the server writes it — the [`SERVER_OWNED`] bookkeeping, read-only fields, a linked
    /// object shown in place of its id — is ignored, so a front end can PATCH back the object
    /// it fetched.
    ///
    /// # Errors
    /// Every [`FieldError`] found.
    pub fn patch(&self, input: Vec<(String, Input)>) -> Result<Record, Vec<FieldError>> {
        let input = input
            .into_iter()
            .filter(|(name, raw)| !self.is_read_back(name, raw))
            .collect();
        let mut errors = Vec::new();
        let changes = self.changes(input, &mut errors);
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }

    fn is_read_back(&self, name: &str, raw: &Input) -> bool {
        SERVER_OWNED.contains(&name)
            || self.field(name).is_some_and(|spec| {
                spec.access == Access::ReadOnly
                    || (matches!(spec.kind, FieldKind::Ref(_)) && *raw == Input::Object)
            })
    }

    fn changes(&self, input: Vec<(String, Input)>, errors: &mut Vec<FieldError>) -> Record {
        let mut changes = Record::default();
        for (name, raw) in input {
            let Some(spec) = self
                .field(&name)
                .filter(|spec| spec.access == Access::Write)
            else {
                errors.push(FieldError::new(&name, "unknown", "is not a known field"));
                continue;
            };
            if raw == Input::Null {
                if spec.required {
                    errors.push(FieldError::new(&name, "required", "cannot be null"));
                } else {
                    changes.set(spec.name, Value::Null);
                }
                continue;
            }
            match parse(spec.kind, raw) {
                Ok(value) => changes.set(spec.name, value),
                Err(message) => errors.push(FieldError::new(&name, kind_code(spec.kind), message)),
            }
        }
        changes
    }
}

fn preset_value(preset: Preset) -> Option<Value> {
    match preset {
        Preset::Unset => None,
        Preset::Bool(flag) => Some(Value::Bool(flag)),
        Preset::Int(number) => Some(Value::Int(number)),
        Preset::Text(text) => Some(Value::Text(text.to_owned())),
    }
}

fn kind_code(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Text { .. } | FieldKind::LongText { .. } => "length",
        FieldKind::Url { .. } => "url",
        FieldKind::Date => "date",
        FieldKind::Integer { .. } | FieldKind::Decimal { .. } => "range",
        FieldKind::Bool => "type",
        FieldKind::Tags { .. } => "tags",
        FieldKind::Choice(_) => "choice",
        FieldKind::Ref(_) => "id",
    }
}

fn text(raw: Input) -> Result<String, String> {
    match raw {
        Input::Text(text) => Ok(text),
        _ => Err("must be a string".to_owned()),
    }
}

fn parse(kind: FieldKind, raw: Input) -> Result<Value, String> {
    match kind {
        FieldKind::Text { min, max } => {
            let value = text(raw)?.trim().to_owned();
            let count = value.chars().count();
            if value.contains(['\n', '\r']) {
                Err("must be a single line".to_owned())
            } else if count < min || count > max {
                Err(format!("must be {min} to {max} characters"))
            } else {
                Ok(Value::Text(value))
            }
        }
        FieldKind::LongText { min, max } => {
            let value = text(raw)?;
            let count = value.trim().chars().count();
            if count < min || value.chars().count() > max {
                Err(format!("must be {min} to {max} characters"))
            } else {
                Ok(Value::Text(value))
            }
        }
        FieldKind::Url { max } => {
            let value = text(raw)?.trim().to_owned();
            if value.chars().count() > max {
                Err(format!("must be at most {max} characters"))
            } else if is_web_url(&value) {
                Ok(Value::Text(value))
            } else {
                Err("must be an http or https URL".to_owned())
            }
        }
        FieldKind::Date => parse_date(&text(raw)?)
            .map(Value::Date)
            .ok_or_else(|| "must be a date (YYYY-MM-DD or RFC 3339)".to_owned()),
        FieldKind::Integer { min, max } => match raw {
            Input::Int(number) if (min..=max).contains(&number) => Ok(Value::Int(number)),
            Input::Float(number)
                if number.fract() == 0.0 && number >= min as f64 && number <= max as f64 =>
            {
                Ok(Value::Int(number as i64))
            }
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        FieldKind::Decimal { min, max } => match raw {
            Input::Int(number) if (number as f64) >= min && (number as f64) <= max => {
                Ok(Value::Float(number as f64))
            }
            Input::Float(number) if number >= min && number <= max => Ok(Value::Float(number)),
            _ => Err(format!("must be a number from {min} to {max}")),
        },
        FieldKind::Bool => match raw {
            Input::Bool(flag) => Ok(Value::Bool(flag)),
            _ => Err("must be true or false".to_owned()),
        },
        FieldKind::Tags { max_items, max_len } => {
            let Input::List(items) = raw else {
                return Err("must be a list of strings".to_owned());
            };
            if items.len() > max_items {
                return Err(format!("must have at most {max_items} entries"));
            }
            items
                .into_iter()
                .map(|item| match item {
                    Input::Text(tag)
                        if !tag.trim().is_empty() && tag.trim().chars().count() <= max_len =>
                    {
                        Ok(tag.trim().to_owned())
                    }
                    _ => Err(format!(
                        "entries must be strings of 1 to {max_len} characters"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List)
        }
        FieldKind::Choice(words) => {
            let value = text(raw)?;
            if words.contains(&value.as_str()) {
                Ok(Value::Text(value))
            } else {
                Err(format!("must be one of: {}", words.join(", ")))
            }
        }
        FieldKind::Ref(_) => {
            let value = text(raw)?;
            crate::ObjectIdGenerator::check(&value)
                .map(|()| Value::Ref(value.to_ascii_lowercase()))
                .map_err(|_| "must be an id (24 hexadecimal digits)".to_owned())
        }
    }
}

/// An absolute http(s) URL with a host and no whitespace.
#[must_use]
pub fn is_web_url(raw: &str) -> bool {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !raw.chars().any(char::is_whitespace)
    })
}

/// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time, to the millisecond: exactly the
/// OpenAPI formats `date` and `date-time` (chrono alone would also take `2024-1-5` or a space
/// for the `T`). Only instants in the years 0000–9999 UTC, which answers can spell in RFC 3339.
#[must_use]
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let bytes = raw.as_bytes();
    let at = if bytes.len() == 10 && shaped(bytes, b"dddd-dd-dd") {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
    } else if is_date_time(bytes) {
        DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc)
    } else {
        return None;
    };
    let at = DateTime::from_timestamp_millis(at.timestamp_millis())?;
    (0..=9999).contains(&at.year()).then_some(at)
}

/// Whether `bytes` follows `template`, where `d` stands for any ASCII digit.
fn shaped(bytes: &[u8], template: &[u8]) -> bool {
    bytes.len() == template.len()
        && bytes.iter().zip(template).all(|(b, t)| {
            if *t == b'd' {
                b.is_ascii_digit()
            } else {
                b == t
            }
        })
}

/// `date T time [.fraction] (Z | ±hh:mm)`, the letters in either case (RFC 3339 5.6).
fn is_date_time(bytes: &[u8]) -> bool {
    let Some((date, rest)) = bytes.split_at_checked(10) else {
        return false;
    };
    let Some((time, mut rest)) = rest.split_at_checked(9) else {
        return false;
    };
    if !shaped(date, b"dddd-dd-dd")
        || !matches!(time[0], b'T' | b't')
        || !shaped(&time[1..], b"dd:dd:dd")
    {
        return false;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    matches!(rest, b"Z" | b"z")
        || (rest.len() == 6 && matches!(rest[0], b'+' | b'-') && shaped(&rest[1..], b"dd:dd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[FieldSpec] = &[
        FieldSpec::optional("title", FieldKind::Text { min: 1, max: 10 }).required(),
        FieldSpec::optional("url", FieldKind::Url { max: 40 }),
        FieldSpec::optional("level", FieldKind::Integer { min: 0, max: 100 }),
        FieldSpec::optional(
            "tags",
            FieldKind::Tags {
                max_items: 2,
                max_len: 5,
            },
        ),
        FieldSpec::optional("startDate", FieldKind::Date),
        FieldSpec::optional("featured", FieldKind::Bool).preset(Preset::Bool(false)),
        FieldSpec::optional("slug", FieldKind::Text { min: 1, max: 10 }).read_only(),
    ];
    const SCHEMA: Schema = Schema { fields: FIELDS };

    fn input(pairs: &[(&str, Input)]) -> Vec<(String, Input)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn fields_in(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_valid_create_fills_presets_and_trims_text() {
        let record = SCHEMA
            .create(input(&[
                ("title", Input::Text("  Hello ".into())),
                ("level", Input::Int(40)),
                ("startDate", Input::Text("2024-02-03".into())),
            ]))
            .unwrap_or_default();
        assert_eq!(record.get("title"), Some(&Value::Text("Hello".into())));
        assert_eq!(record.get("featured"), Some(&Value::Bool(false)));
        assert_eq!(
            record.get("startDate"),
            parse_date("2024-02-03T00:00:00Z").map(Value::Date).as_ref()
        );
    }

    #[test]
    fn a_patch_ignores_what_the_client_read_but_only_the_server_writes() {
        let changes = SCHEMA
            .patch(input(&[
                ("id", Input::Text("6650c0ffee0000000000abcd".into())),
                ("userId", Input::Text("6650c0ffee0000000000abce".into())),
                ("createdAt", Input::Text("2024-01-01T00:00:00Z".into())),
                ("updatedAt", Input::Text("2024-01-01T00:00:00Z".into())),
                ("order", Input::Int(3)),
                ("slug", Input::Text("mine".into())),
                ("title", Input::Text("New".into())),
            ]))
            .unwrap_or_default();
        assert_eq!(
            changes.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            ["title"]
        );
        let errors = SCHEMA
            .patch(input(&[("owner", Input::Text("x".into()))]))
            .err()
            .unwrap_or_default();
        assert_eq!(
            fields_in(&errors),
            ["owner"],
            "a truly unknown field is refused"
        );
    }

    #[test]
    fn every_bad_field_is_reported_once() {
        let errors = SCHEMA
            .create(input(&[
                ("url", Input::Text("javascript:alert(1)".into())),
                ("level", Input::Int(101)),
                (
                    "tags",
                    Input::List(vec![Input::Text("a".into()), Input::Object]),
                ),
                ("startDate", Input::Text("yesterday".into())),
                ("slug", Input::Text("mine".into())),
                ("owner", Input::Text("x".into())),
            ]))
            .err()
            .unwrap_or_default();
        assert_eq!(
            fields_in(&errors),
            [
                "url",
                "level",
                "tags",
                "startDate",
                "slug",
                "owner",
                "title"
            ]
        );
    }

    #[test]
    fn operator_shaped_values_are_refused_not_interpreted() {
        let errors = SCHEMA
            .patch(input(&[
                ("title", Input::Object),
                ("featured", Input::Object),
            ]))
            .err()
            .unwrap_or_default();
        assert_eq!(fields_in(&errors), ["title", "featured"]);
    }

    #[test]
    fn null_clears_optional_fields_but_not_required_ones() {
        let mut record = SCHEMA
            .create(input(&[
                ("title", Input::Text("x".into())),
                ("level", Input::Int(3)),
            ]))
            .unwrap_or_default();
        let changes = SCHEMA
            .patch(input(&[("level", Input::Null)]))
            .unwrap_or_default();
        record.merge(changes);
        assert_eq!(record.get("level"), None);
        assert!(SCHEMA.patch(input(&[("title", Input::Null)])).is_err());
    }

    #[test]
    fn dates_are_exactly_rfc_3339_full_dates_or_date_times() {
        for good in [
            "2024-02-29",
            "2024-01-01T10:00:00Z",
            "2024-01-01t10:00:00.5z",
            "2024-01-01T10:00:00.123456-05:30",
        ] {
            assert!(parse_date(good).is_some(), "{good}");
        }
        for bad in [
            "2024-1-5",
            "2023-02-29",
            "2024-01-01 10:00:00Z",
            "2024-01-01T10:00:00",
            "2024-01-01T10:00:00.Z",
            "+2024-01-01",
            "9999-12-31T23:00:00-05:00",
            " 2024-01-01",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(is_web_url("https://example.com/a?b#c"));
        assert!(is_web_url("http://localhost:3000"));
        for bad in [
            "ftp://x.y",
            "https://",
            "https:// x.y",
            "example.com",
            "data:text/html,hi",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }
}
