//! Schema-described records on the wire: portfolio items, the portfolio profile and settings
//! documents rendered as JSON objects, and their OpenAPI schemas generated from the same
//! declarations, so that the document cannot disagree with what is served.

use chrono::{DateTime, SecondsFormat, Utc};
use kernel::record::{FieldKind, Record, Schema, Value};
use kernel::settings::SettingsDocument;
use portfolio_core::model::{Item, ItemView};
use serde::Serialize;
use serde::ser::{SerializeMap as _, Serializer};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Schema as OpenApiSchema, SchemaFormat};

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

fn field_schema(kind: FieldKind) -> RefOr<OpenApiSchema> {
    let object = ObjectBuilder::new();
    let object = match kind {
        FieldKind::Text { min, max } | FieldKind::LongText { min, max } => object
            .schema_type(SchemaType::new(Type::String))
            .min_length(Some(min))
            .max_length(Some(max)),
        FieldKind::Url { max } => object
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::Custom("uri".to_owned())))
            .max_length(Some(max)),
        FieldKind::Date => object
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("YYYY-MM-DD or RFC 3339; answered as RFC 3339")),
        FieldKind::Integer { min, max } => object
            .schema_type(SchemaType::new(Type::Integer))
            .minimum(Some(min as f64))
            .maximum(Some(max as f64)),
        FieldKind::Decimal { min, max } => object
            .schema_type(SchemaType::new(Type::Number))
            .minimum(Some(min))
            .maximum(Some(max)),
        FieldKind::Bool => object.schema_type(SchemaType::new(Type::Boolean)),
        FieldKind::Tags { max_items, max_len } => {
            return ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::new(Type::String))
                        .min_length(Some(1))
                        .max_length(Some(max_len)),
                )
                .max_items(Some(max_items))
                .into();
        }
        FieldKind::Choice(words) => object
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(words.iter().copied())),
        FieldKind::Ref(target) => object
            .schema_type(SchemaType::new(Type::String))
            .pattern(Some("^[0-9a-f]{24}$"))
            .description(Some(format!(
                "Id of one of your {target}; answered as the linked object"
            ))),
    };
    object.into()
}

/// The OpenAPI schema of a record kind: `input` for request bodies (writable fields, with
/// the required ones marked when `create`), otherwise the response shape.
#[must_use]
pub fn schema_of(schema: &Schema, input: bool, create: bool, extra: &[&str]) -> OpenApiSchema {
    let mut object = ObjectBuilder::new().schema_type(SchemaType::new(Type::Object));
    if input {
        object = object.additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
    } else {
        object = object.property(
            "id",
            ObjectBuilder::new().schema_type(SchemaType::new(Type::String)),
        );
    }
    for field in schema.fields {
        if input && field.access == kernel::record::Access::ReadOnly {
            continue;
        }
        object = object.property(field.name, field_schema(field.kind));
        if input && create && field.required {
            object = object.required(field.name);
        }
    }
    if !input {
        for name in extra {
            object = object.property(
                *name,
                ObjectBuilder::new().schema_type(SchemaType::new(Type::String)),
            );
        }
    }
    object.into()
}
