//! Query strings of list routes: `page` (from 1), `limit` (1–100, default 10), and flags.

use std::collections::HashMap;

use kernel::PageRequest;

use crate::problem::{ApiError, FieldError};

/// The highest page number asked for (a bound, so that an offset cannot overflow).
pub const MAX_PAGE: u32 = 1_000_000;

/// The parsed query of a list route.
#[derive(Debug, PartialEq, Eq)]
pub struct ListParams {
    pub page: PageRequest,
    pub grouped: bool,
}

fn number(
    raw: Option<&String>,
    field: &str,
    min: u32,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    let raw = raw?;
    match raw.parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Some(value),
        _ => {
            errors.push(FieldError {
                field: field.to_owned(),
                code: "range".to_owned(),
                message: format!("must be a whole number from {min} to {max}"),
            });
            None
        }
    }
}

impl ListParams {
    /// # Errors
    /// 400 naming each bad parameter.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let page = number(query.get("page"), "page", 1, MAX_PAGE, &mut errors).unwrap_or(1);
        let limit = number(
            query.get("limit"),
            "limit",
            1,
            PageRequest::MAX_LIMIT,
            &mut errors,
        )
        .unwrap_or(PageRequest::DEFAULT_LIMIT);
        let grouped = match query.get("grouped").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                errors.push(FieldError {
                    field: "grouped".to_owned(),
                    code: "type".to_owned(),
                    message: "must be true or false".to_owned(),
                });
                false
            }
        };
        if errors.is_empty() {
            Ok(Self {
                page: PageRequest { page, limit },
                grouped,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListParams, ApiError> {
        ListParams::parse(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_page_one_of_ten() {
        assert_eq!(
            parse(&[]).ok(),
            Some(ListParams {
                page: PageRequest { page: 1, limit: 10 },
                grouped: false
            })
        );
    }

    #[test]
    fn out_of_range_values_name_their_parameter() {
        let error = parse(&[("page", "0"), ("limit", "101"), ("grouped", "yes")]).err();
        let fields: Vec<String> = error
            .map(|e| e.errors.into_iter().map(|f| f.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["page", "limit", "grouped"]);
    }
}
