//! Schema-described records on the wire: portfolio items, the portfolio profile and settings
//! documents rendered as JSON objects, and their OpenAPI schemas generated from the same
//! declarations, so that the document cannot disagree with what is served.

use chrono::{DateTime, SecondsFormat, Utc};
use kernel::record::{Access, FieldKind, Record, SERVER_OWNED, Schema, Value};
use kernel::settings::SettingsDocument;
use portfolio_core::model::{Item, ItemView};
use serde::Serialize;
use serde::ser::{SerializeMap as _, Serializer};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr, Schema as OpenApiSchema, SchemaFormat};

use crate::openapi_patterns;

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One value as JSON.
struct Json<'a>(&'a Value);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_none(),
            Value::Bool(flag) => serializer.serialize_bool(*flag),
            Value::Int(number) => serializer.serialize_i64(*number),
            Value::Float(number) => serializer.serialize_f64(*number),
            Value::Text(text) | Value::Ref(text) => serializer.serialize_str(text),
            Value::Date(at) => serializer.serialize_str(&timestamp(*at)),
            Value::List(items) => items.serialize(serializer),
        }
    }
}

/// Who is reading: the owner sees every field and the bookkeeping; the public sees only
/// public fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Owner,
    Public,
    /// The owner's data export: everything stored, soft-deleted items marked.
    Export,
}

/// An item (with its linked items in place of their ids) as a JSON object.
pub struct ItemBody<'a> {
    pub view: &'a ItemView,
    pub audience: Audience,
}

/// Whether `audience` sees the field `name` of `schema`: the public only sees public fields.
fn shown(schema: &Schema, name: &str, audience: Audience) -> bool {
    audience != Audience::Public || schema.field(name).is_some_and(|spec| spec.public)
}

fn write_fields<M: serde::ser::SerializeMap>(
    map: &mut M,
    schema: &Schema,
    fields: &Record,
    audience: Audience,
) -> Result<(), M::Error> {
    for (name, value) in fields.iter() {
        if shown(schema, name, audience) {
            map.serialize_entry(name, &Json(value))?;
        }
    }
    Ok(())
}

/// A linked item, rendered in place of its id.
struct LinkedBody<'a> {
    item: &'a Item,
    audience: Audience,
}

impl Serialize for LinkedBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        write_item(&mut map, self.item, &[], self.audience)?;
        map.end()
    }
}

fn write_item<M: serde::ser::SerializeMap>(
    map: &mut M,
    item: &Item,
    linked: &[(&'static str, Item)],
    audience: Audience,
) -> Result<(), M::Error> {
    map.serialize_entry("id", item.id.as_str())?;
    for (name, value) in item.fields.iter() {
        if !shown(&item.resource.schema, name, audience) {
            continue;
        }
        match linked.iter().find(|(field, _)| *field == name) {
            Some((_, target)) => map.serialize_entry(
                name,
                &LinkedBody {
                    item: target,
                    audience,
                },
            )?,
            None => map.serialize_entry(name, &Json(value))?,
        }
    }
    if item.resource.features.reorder {
        map.serialize_entry("order", &item.position)?;
    }
    if audience != Audience::Public {
        map.serialize_entry("userId", item.owner.as_str())?;
    }
    if let (Audience::Export, Some(at)) = (audience, item.deleted_at) {
        map.serialize_entry("deletedAt", &timestamp(at))?;
    }
    map.serialize_entry("createdAt", &timestamp(item.created_at))?;
    map.serialize_entry("updatedAt", &timestamp(item.updated_at))
}

impl Serialize for ItemBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        write_item(&mut map, &self.view.item, &self.view.linked, self.audience)?;
        map.end()
    }
}

/// Several items.
pub struct ItemsBody<'a> {
    pub views: &'a [ItemView],
    pub audience: Audience,
}

impl Serialize for ItemsBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.views.iter().map(|view| ItemBody {
            view,
            audience: self.audience,
        }))
    }
}

/// A settings document (or the public part of one) as a JSON object.
pub struct SettingsBody<'a> {
    pub schema: &'a Schema,
    pub fields: &'a Record,
    pub document: Option<&'a SettingsDocument>,
    pub audience: Audience,
}

impl Serialize for SettingsBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        write_fields(&mut map, self.schema, self.fields, self.audience)?;
        if let Some(document) = self.document {
            map.serialize_entry("createdAt", &timestamp(document.created_at))?;
            map.serialize_entry("updatedAt", &timestamp(document.updated_at))?;
        }
        map.end()
    }
}

/// Which side of the wire a record schema describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// As answered: stored values, linked items in place of their ids.
    Read,
    /// A create body: the writable fields, required ones required.
    Create,
    /// A PATCH body: any writable field, and whatever of the read shape a client sends back.
    Update,
}

fn typed(kind: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::new(kind))
}

fn any_of(alternatives: impl IntoIterator<Item = RefOr<OpenApiSchema>>) -> RefOr<OpenApiSchema> {
    let mut builder = AnyOfBuilder::new();
    for alternative in alternatives {
        builder = builder.item(alternative);
    }
    builder.into()
}

fn not_line_break(c: char) -> bool {
    c != '\n' && c != '\r'
}

/// An `http://` or `https://` URL of at most `max` characters once trimmed, with a host and no
/// whitespace (`kernel::record::is_web_url`).
fn url_pattern(max: usize) -> String {
    let rest = openapi_patterns::class(openapi_patterns::solid);
    let host =
        openapi_patterns::class(|c| openapi_patterns::solid(c) && !matches!(c, '/' | '?' | '#'));
    openapi_patterns::trimmed(&format!(
        "(?:http://[{host}][{rest}]{{0,{}}}|https://[{host}][{rest}]{{0,{}}})",
        max.saturating_sub(8),
        max.saturating_sub(9)
    ))
}

/// A `slug` (`portfolio_core::slug::is_slug`, compared without case): hyphen-separated runs of
/// letters and digits, at most 110 characters once trimmed.
fn slug_schema() -> RefOr<OpenApiSchema> {
    let ws = openapi_patterns::class(char::is_whitespace);
    typed(Type::String)
        .pattern(Some(openapi_patterns::trimmed(&format!(
            "(?=[A-Za-z0-9-]{{1,110}}[{ws}]*$)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
        ))))
        .description(Some(
            "Letters and digits in runs joined by single hyphens, at most 110 characters; unique among your items; trimmed, compared without case",
        ))
        .into()
}

/// A value a client sends of one field, exactly as `kernel::record` parses it.
fn input_schema(kind: FieldKind) -> RefOr<OpenApiSchema> {
    let string = || typed(Type::String);
    match kind {
        FieldKind::Text { min, max } => string()
            .pattern(Some(openapi_patterns::trimmed_length(
                not_line_break,
                openapi_patterns::solid,
                min,
                max,
            )))
            .description(Some(format!(
                "One line of {min} to {max} characters; whitespace around it is trimmed"
            )))
            .into(),
        FieldKind::LongText { min, max } => {
            let mut text = string().max_length(Some(max));
            if min > 0 {
                let edge = openapi_patterns::class(openapi_patterns::solid);
                let any = openapi_patterns::ANY;
                text = text.pattern(Some(if min == 1 {
                    format!("[{edge}]")
                } else {
                    openapi_patterns::trimmed(&format!("[{edge}]{any}{{{},}}[{edge}]", min - 2))
                }));
            }
            text.description(Some(format!(
                "At most {max} characters, at least {min} of them besides whitespace around"
            )))
            .into()
        }
        FieldKind::Url { max } => string()
            .pattern(Some(url_pattern(max)))
            .description(Some(format!(
                "An http(s) URL of at most {max} characters, without whitespace; trimmed"
            )))
            .into(),
        FieldKind::Date => AnyOfBuilder::new()
            .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))))
            .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))))
            .description(Some(
                "An RFC 3339 date (midnight UTC) or date-time, within the years 0000 to 9999 in UTC; answered as a UTC date-time",
            ))
            .into(),
        FieldKind::Tags { max_items, max_len } => ArrayBuilder::new()
            .items(string().pattern(Some(openapi_patterns::trimmed_length(
                |_| true,
                openapi_patterns::solid,
                1,
                max_len,
            ))))
            .max_items(Some(max_items))
            .description(Some(format!(
                "At most {max_items} strings of 1 to {max_len} characters, trimmed"
            )))
            .into(),
        FieldKind::Ref(target) => string()
            .pattern(Some("^[0-9a-fA-F]{24}$"))
            .description(Some(format!("Id of one of your {target}")))
            .into(),
        other => read_schema(other),
    }
}

/// A stored value of one field, as answered.
fn read_schema(kind: FieldKind) -> RefOr<OpenApiSchema> {
    match kind {
        FieldKind::Text { .. } | FieldKind::LongText { .. } | FieldKind::Url { .. } => {
            typed(Type::String).into()
        }
        FieldKind::Date => typed(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into(),
        FieldKind::Integer { min, max } => typed(Type::Integer)
            .minimum(Some(min as f64))
            .maximum(Some(max as f64))
            .into(),
        FieldKind::Decimal { min, max } => typed(Type::Number)
            .minimum(Some(min))
            .maximum(Some(max))
            .into(),
        FieldKind::Bool => typed(Type::Boolean).into(),
        FieldKind::Tags { .. } => ArrayBuilder::new().items(typed(Type::String)).into(),
        FieldKind::Choice(words) => typed(Type::String)
            .enum_values(Some(words.iter().copied()))
            .into(),
        FieldKind::Ref(_) => typed(Type::String).pattern(Some("^[0-9a-f]{24}$")).into(),
    }
}

/// A value that is accepted and ignored (what a client read and sends back).
fn ignored(description: &str) -> RefOr<OpenApiSchema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(description))
        .into()
}

/// The bookkeeping fields of a record as answered: `(name, always present)`.
pub type Bookkeeping<'a> = &'a [(&'a str, bool)];

fn bookkeeping_schema(name: &str) -> ObjectBuilder {
    match name {
        "order" => typed(Type::Integer),
        "createdAt" | "updatedAt" | "deletedAt" => {
            typed(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        }
        _ => typed(Type::String),
    }
}

/// The OpenAPI schema of a record kind in `shape`. `bookkeeping` lists the fields the server
/// adds when answering; `linked` gives the schema of an item a reference field links to
/// (answered in place of its id); `slugged`: the record's `slug` field is a slug.
#[must_use]
pub fn schema_of(
    schema: &Schema,
    shape: Shape,
    bookkeeping: Bookkeeping<'_>,
    linked: &dyn Fn(&'static str) -> RefOr<OpenApiSchema>,
    slugged: bool,
) -> OpenApiSchema {
    let mut object = typed(Type::Object);
    if shape == Shape::Read {
        for (name, always) in bookkeeping {
            object = object.property(*name, bookkeeping_schema(name));
            if *always {
                object = object.required(*name);
            }
        }
    } else {
        object = object.additional_properties(Some(AdditionalProperties::FreeForm(false)));
    }
    if shape == Shape::Update {
        for name in SERVER_OWNED {
            object = object.property(*name, ignored("Set by the server; ignored"));
        }
    }
    for field in schema.fields {
        let read_only = field.access == Access::ReadOnly;
        let property = match (shape, field.kind) {
            (Shape::Read, FieldKind::Ref(target)) => {
                any_of([read_schema(field.kind), linked(target)])
            }
            (Shape::Read, kind) => read_schema(kind),
            (Shape::Create, _) if read_only => continue,
            (Shape::Update, _) if read_only => ignored("Set by the server; ignored"),
            (_, _) if slugged && field.name == "slug" => {
                any_of([slug_schema(), typed(Type::Null).into()])
            }
            // `null` clears an optional field.
            (_, kind) if !field.required => {
                let mut alternatives = vec![input_schema(kind), typed(Type::Null).into()];
                if shape == Shape::Update && matches!(kind, FieldKind::Ref(_)) {
                    // The linked item a client read in place of the id.
                    alternatives.push(
                        typed(Type::Object)
                            .description(Some("The linked item as answered; ignored"))
                            .into(),
                    );
                }
                any_of(alternatives)
            }
            (_, kind) => input_schema(kind),
        };
        object = object.property(field.name, property);
        if field.required && shape != Shape::Update {
            object = object.required(field.name);
        }
    }
    object.into()
}

#[cfg(test)]
mod tests {
    use kernel::record::{FieldSpec, Input};

    use super::*;

    /// Whether the document's schema of `kind` accepts `value` (patterns and lengths only).
    fn documented(kind: FieldKind, value: &str) -> bool {
        let schema = serde_json::to_value(input_schema(kind)).unwrap_or_default();
        let schema = if kind_is_tags(kind) {
            &schema["items"]
        } else {
            &schema
        };
        let pattern = schema["pattern"].as_str().is_none_or(|pattern| {
            regex::Regex::new(pattern).is_ok_and(|regex| regex.is_match(value))
        });
        let max = schema["maxLength"]
            .as_u64()
            .is_none_or(|max| value.chars().count() as u64 <= max);
        pattern && max
    }

    fn kind_is_tags(kind: FieldKind) -> bool {
        matches!(kind, FieldKind::Tags { .. })
    }

    /// Whether the server accepts `value` for a field of `kind`.
    fn accepted(kind: FieldKind, value: &str) -> bool {
        let fields: &'static [FieldSpec] = Box::leak(Box::new([FieldSpec::optional("f", kind)]));
        let raw = if kind_is_tags(kind) {
            Input::List(vec![Input::Text(value.to_owned())])
        } else {
            Input::Text(value.to_owned())
        };
        Schema { fields }.patch(vec![("f".to_owned(), raw)]).is_ok()
    }

    #[test]
    fn the_documented_patterns_accept_exactly_what_the_records_accept() {
        let kinds = [
            FieldKind::Text { min: 1, max: 5 },
            FieldKind::Text { min: 2, max: 4 },
            FieldKind::LongText { min: 0, max: 6 },
            FieldKind::LongText { min: 1, max: 6 },
            FieldKind::Url { max: 20 },
            FieldKind::Tags {
                max_items: 2,
                max_len: 3,
            },
        ];
        let samples = [
            "",
            " ",
            "a",
            "ab",
            " ab ",
            "abcde",
            "abcdef",
            "a\nb",
            "\na\n",
            "a\rb",
            "\u{1c}x",
            "\u{3000}ab\u{3000}",
            "é",
            "a\u{0}b",
            "http://x",
            " https://a.b/c ",
            "http://",
            "https:///x",
            "http://a b",
            "HTTP://a",
            "ftp://a.b",
            "http://?x",
            "http://a\u{0}",
            "https://example.com/abcdef",
            "http://\u{85}x",
        ];
        for kind in kinds {
            for sample in samples {
                assert_eq!(
                    documented(kind, sample),
                    accepted(kind, sample),
                    "{kind:?} {sample:?}"
                );
            }
        }
    }
}
