//! Field kinds and a `Schema`'s checks of client input: every bad field named once.

use super::parse::parse;
use super::{Input, Record, SERVER_OWNED, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::parse_date;

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
}
