//! `ValidJson<T>`: the only way a JSON body enters a handler. It insists on a JSON content
//! type, reports type errors with the field they occurred at, refuses unknown fields (DTOs deny
//! them), and runs garde validation, naming every bad field. `RecordJson` is its counterpart
//! for schema-described records, whose checking belongs to the core's schema.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use kernel::record::Input;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ErrorCode, FieldError};

pub struct ValidJson<T>(pub T);

fn is_json(request: &HttpRequest) -> bool {
    let Some(content_type) = request.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return false;
    };
    let essence = content_type
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `current_password` (or `app-preferences`) → `currentPassword` (`appPreferences`); garde
/// paths are converted segment by segment.
pub(crate) fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// garde reports a message only, so our validators put the rule's name in front of theirs.
const RULE_SEPARATOR: char = '\u{1f}';

/// A garde message that carries its rule name (see [`rule_of`]).
pub(crate) fn ruled_message(rule: &str, message: &str) -> String {
    format!("{rule}{RULE_SEPARATOR}{message}")
}

/// The rule name and the message of a garde error: ours carry the rule, garde's own `length`
/// rule is the only built-in one the DTOs use.
fn rule_of(message: &str) -> (&str, &str) {
    message
        .split_once(RULE_SEPARATOR)
        .unwrap_or(("length", message))
}

/// Parses and validates a JSON body.
///
/// # Errors
/// The [`ApiError`] a client should see: 415 for a non-JSON body, 400 for malformed JSON,
/// a wrongly typed or unknown field, or a garde rule broken.
pub fn parse<T: DeserializeOwned + garde::Validate<Context = ()>>(
    bytes: &[u8],
) -> Result<T, ApiError> {
    // serde would read a JSON array positionally into a struct; only objects are bodies here.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let message = if serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
            || bytes.iter().all(u8::is_ascii_whitespace)
        {
            "Request body must be a JSON object"
        } else {
            "Malformed JSON"
        };
        return Err(ApiError::new(ErrorCode::InvalidJson, message));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let mut field = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            return ApiError::field(
                &if field == "." {
                    missing.to_owned()
                } else {
                    format!("{field}.{missing}")
                },
                "required",
                "is required",
            );
        }
        if let Some(unknown) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            && field == "."
        {
            field = unknown.to_owned();
        }
        if inner.is_syntax() || inner.is_eof() || field == "." {
            return ApiError::new(ErrorCode::InvalidJson, format!("Malformed JSON: {message}"));
        }
        ApiError::field(&field, "type", message)
    })?;
    value.validate().map_err(|report| {
        ApiError::validation(
            report
                .iter()
                .map(|(path, error)| {
                    let (rule, message) = rule_of(error.message());
                    FieldError {
                        field: camel_case(&path.to_string()),
                        code: rule.to_owned(),
                        message: message.to_owned(),
                    }
                })
                .collect(),
        )
    })?;
    Ok(value)
}

impl<T: DeserializeOwned + garde::Validate<Context = ()> + 'static> FromRequest for ValidJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(request, payload);
        Box::pin(async move { Ok(Self(parse(&bytes.await?)?)) })
    }
}

/// A request body that may carry, besides its own fields, the read-only fields of the object
/// the client fetched (which it PATCHes back whole).
pub trait ReadBack {
    /// Fields of the read shape that only the server writes; ignored in the body.
    const SERVER_OWNED: &'static [&'static str];
}

/// A PATCH body: [`ValidJson`] after taking out the fields [`ReadBack::SERVER_OWNED`] names,
/// which the handler checks against the current object with [`PatchJson::unchanged`].
pub struct PatchJson<T> {
    pub body: T,
    read_back: serde_json::Map<String, serde_json::Value>,
}

impl<T> PatchJson<T> {
    /// The body, once every server-owned field sent back equals its value in `current` (the
    /// object as the client would read it).
    ///
    /// # Errors
    /// 400 naming each server-owned field sent with another value: it cannot be changed here.
    pub fn unchanged(self, current: &impl serde::Serialize) -> Result<T, ApiError> {
        let current = serde_json::to_value(current).map_err(|_| ApiError::internal())?;
        let changed: Vec<FieldError> = self
            .read_back
            .iter()
            .filter(|(field, value)| current.get(field.as_str()) != Some(value))
            .map(|(field, _)| FieldError {
                field: field.clone(),
                code: "readOnly".to_owned(),
                message: "cannot be changed here".to_owned(),
            })
            .collect();
        if changed.is_empty() {
            Ok(self.body)
        } else {
            Err(ApiError::validation(changed))
        }
    }
}

impl<T: DeserializeOwned + garde::Validate<Context = ()> + ReadBack + 'static> FromRequest
    for PatchJson<T>
{
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(request, payload);
        Box::pin(async move {
            let bytes = bytes.await?;
            let mut read_back = serde_json::Map::new();
            let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(mut object)) => {
                    for field in T::SERVER_OWNED {
                        if let Some(value) = object.remove(*field) {
                            read_back.insert((*field).to_owned(), value);
                        }
                    }
                    serde_json::to_vec(&object)
                        .map_err(|_| ApiError::internal())?
                        .into()
                }
                // Not an object: let `parse` word the error.
                _ => bytes,
            };
            Ok(Self {
                body: parse(&body)?,
                read_back,
            })
        })
    }
}

/// The body of a JSON request, refused with 415 when it is declared as anything else.
fn json_bytes(
    request: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, actix_web::Error>> + 'static {
    let json = is_json(request);
    let bytes = web::Bytes::from_request(request, payload);
    async move {
        let bytes = bytes.await?;
        if !json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Content-Type must be application/json",
            )
            .into());
        }
        Ok(bytes)
    }
}

/// A JSON object body for a schema-described record (portfolio items, settings), read as
/// untyped field values for the core's schema to check.
pub struct RecordJson(pub Vec<(String, Input)>);

fn input(value: serde_json::Value) -> Input {
    use serde_json::Value as Json;
    match value {
        Json::Null => Input::Null,
        Json::Bool(flag) => Input::Bool(flag),
        Json::Number(number) => number.as_i64().map_or_else(
            || Input::Float(number.as_f64().unwrap_or(f64::NAN)),
            Input::Int,
        ),
        Json::String(text) => Input::Text(text),
        Json::Array(items) => Input::List(items.into_iter().map(input).collect()),
        Json::Object(_) => Input::Object,
    }
}

/// # Errors
/// 400 `INVALID_JSON` unless `bytes` is one JSON object.
pub fn parse_record(bytes: &[u8]) -> Result<Vec<(String, Input)>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(object)) => {
            Ok(object.into_iter().map(|(k, v)| (k, input(v))).collect())
        }
        Ok(_) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            "Request body must be a JSON object",
        )),
        Err(error) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("Malformed JSON: {error}"),
        )),
    }
}

impl FromRequest for RecordJson {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = json_bytes(request, payload);
        Box::pin(async move { Ok(Self(parse_record(&bytes.await?)?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, garde::Validate)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        #[garde(length(min = 2))]
        display_name: String,
    }

    fn code(bytes: &[u8]) -> (&'static str, Vec<String>) {
        match parse::<Sample>(bytes) {
            Ok(_) => ("OK", Vec::new()),
            Err(e) => (
                e.code.as_str(),
                e.errors.into_iter().map(|f| f.field).collect(),
            ),
        }
    }

    #[test]
    fn type_errors_name_their_field() {
        assert_eq!(
            code(br#"{"displayName": {"$ne": null}}"#),
            ("VALIDATION_ERROR", vec!["displayName".to_owned()])
        );
    }

    #[test]
    fn broken_json_is_its_own_error() {
        assert_eq!(code(b"{\"displayName\": ").0, "INVALID_JSON");
        assert_eq!(code(b"").0, "INVALID_JSON");
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            code(b"{}"),
            ("VALIDATION_ERROR", vec!["displayName".to_owned()])
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_invalid_json() {
        assert_eq!(code(b"[1, 2]").0, "INVALID_JSON");
        assert_eq!(code(b"\"text\"").0, "INVALID_JSON");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert_eq!(
            code(br#"{"displayName": "Ada", "role": "admin"}"#).0,
            "VALIDATION_ERROR"
        );
    }

    #[test]
    fn garde_failures_are_named_in_camel_case() {
        assert_eq!(
            code(br#"{"displayName": "A"}"#),
            ("VALIDATION_ERROR", vec!["displayName".to_owned()])
        );
        assert_eq!(code(br#"{"displayName": "Ada"}"#).0, "OK");
    }
}
