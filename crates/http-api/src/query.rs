//! Query strings: [`Param`], a parameter parsed on its own, and [`ListQuery`], the query of
//! list routes: `page` (from 1), `limit` (1–100, default 10) and `grouped`.

use std::str::FromStr;

use kernel::PageRequest;
use serde::{Deserialize, Deserializer};
use utoipa::IntoParams;

use crate::problem::{ApiError, FieldError};

/// The highest page number asked for (a bound, so that an offset cannot overflow).
pub const MAX_PAGE: u32 = 1_000_000;

/// A query parameter that was sent, parsed on its own: a value that does not parse is kept
/// as `None` instead of failing the whole query, so that the route names every bad parameter
/// in one answer (serde would stop at the first).
#[derive(Debug)]
pub struct Param<T>(Option<T>);

impl<T> Param<T> {
    /// The value, unless it did not parse.
    pub fn value(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: FromStr> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(String::deserialize(deserializer)?.parse().ok()))
    }
}

/// The query of a list route; other parameters are ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page, from 1
    #[param(value_type = Option<u32>)]
    page: Option<Param<u32>>,
    /// Items per page, 1–100 (default 10)
    #[param(value_type = Option<u32>)]
    limit: Option<Param<u32>>,
    /// true: every item, grouped (resources that declare a grouping field)
    #[param(value_type = Option<bool>)]
    grouped: Option<Param<bool>>,
}

/// The validated query of a list route.
#[derive(Debug, PartialEq, Eq)]
pub struct ListParams {
    pub page: PageRequest,
    pub grouped: bool,
}

fn number(
    param: Option<&Param<u32>>,
    field: &str,
    min: u32,
    max: u32,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    match param?.value() {
        Some(value) if (min..=max).contains(value) => Some(*value),
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

impl ListQuery {
    /// # Errors
    /// 400 naming each bad parameter.
    pub fn params(&self) -> Result<ListParams, ApiError> {
        let mut errors = Vec::new();
        let page = number(self.page.as_ref(), "page", 1, MAX_PAGE, &mut errors).unwrap_or(1);
        let limit = number(
            self.limit.as_ref(),
            "limit",
            1,
            PageRequest::MAX_LIMIT,
            &mut errors,
        )
        .unwrap_or(PageRequest::DEFAULT_LIMIT);
        let grouped = match self.grouped.as_ref().map(Param::value) {
            None => false,
            Some(Some(grouped)) => *grouped,
            Some(None) => {
                errors.push(FieldError {
                    field: "grouped".to_owned(),
                    code: "type".to_owned(),
                    message: "must be true or false".to_owned(),
                });
                false
            }
        };
        if errors.is_empty() {
            Ok(ListParams {
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
    use actix_web::web::Query;

    use super::*;

    fn parse(query: &str) -> Result<ListParams, ApiError> {
        Query::<ListQuery>::from_query(query)
            .unwrap_or_else(|e| panic!("{e}"))
            .params()
    }

    #[test]
    fn defaults_are_page_one_of_ten() {
        assert_eq!(
            parse("").ok(),
            Some(ListParams {
                page: PageRequest { page: 1, limit: 10 },
                grouped: false
            })
        );
    }

    #[test]
    fn out_of_range_values_name_their_parameter() {
        let error = parse("page=0&limit=101&grouped=yes").err();
        let fields: Vec<String> = error
            .map(|e| e.errors.into_iter().map(|f| f.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["page", "limit", "grouped"]);
    }

    #[test]
    fn values_that_are_not_numbers_are_out_of_range_and_other_parameters_are_ignored() {
        let error = parse("page=two&sort=name").err();
        let rules: Vec<(String, String)> = error
            .map(|e| e.errors.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default();
        assert_eq!(rules, [("page".to_owned(), "range".to_owned())]);
        assert_eq!(
            parse("page=2&limit=5&grouped=true&sort=name").ok(),
            Some(ListParams {
                page: PageRequest { page: 2, limit: 5 },
                grouped: true
            })
        );
    }
}
