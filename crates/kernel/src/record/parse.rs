//! One client value to a typed one, by its field's kind; dates and URLs as the wire formats
//! spell them.

use chrono::{DateTime, Datelike as _, NaiveDate, Utc};

use super::schema::FieldKind;
use super::{Input, Value};

fn text(raw: Input) -> Result<String, String> {
    match raw {
        Input::Text(text) => Ok(text),
        _ => Err("must be a string".to_owned()),
    }
}

pub(super) fn parse(kind: FieldKind, raw: Input) -> Result<Value, String> {
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
