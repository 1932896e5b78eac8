//! Redis replies → domain values. A reply of an unexpected shape is an error, not a panic.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fred::types::Value;
use notify_core::jobs::FailedAttempt;
use notify_core::{Job, JobId, JobState, QueueError};

pub(crate) fn malformed(what: &str) -> QueueError {
    QueueError(format!("unexpected reply from Redis: {what}"))
}

pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

pub(crate) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

pub(crate) fn array(value: Value) -> Result<Vec<Value>, QueueError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(malformed("expected an array")),
    }
}

/// An `HGETALL` reply as a map.
pub(crate) fn fields(value: Value) -> Result<HashMap<String, String>, QueueError> {
    if let Value::Map(map) = value {
        return map
            .inner()
            .into_iter()
            .map(|(key, value)| {
                let key = key.as_str().ok_or_else(|| malformed("field name"))?;
                Ok((key.to_owned(), text(&value).unwrap_or_default()))
            })
            .collect();
    }
    let items = array(value)?;
    let mut map = HashMap::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        if let [key, value] = pair {
            map.insert(
                text(key).ok_or_else(|| malformed("field name"))?,
                text(value).unwrap_or_default(),
            );
        }
    }
    Ok(map)
}

fn time(ms: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms.parse().ok()?)
}

/// A job hash as a [`Job`].
pub(crate) fn job(mut h: HashMap<String, String>) -> Result<Job, QueueError> {
    let number = |h: &HashMap<String, String>, key: &str| {
        h.get(key)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| malformed(key))
    };
    let at = |h: &HashMap<String, String>, key: &str| h.get(key).and_then(|v| time(v));
    Ok(Job {
        id: h
            .get("id")
            .and_then(|id| JobId::parse(id).ok())
            .ok_or_else(|| malformed("job id"))?,
        state: h
            .get("state")
            .and_then(|s| JobState::parse(s))
            .ok_or_else(|| malformed("job state"))?,
        attempts: number(&h, "attempts")?,
        max_attempts: number(&h, "max")?,
        enqueued_at: at(&h, "enq").ok_or_else(|| malformed("enqueued at"))?,
        run_at: at(&h, "run").ok_or_else(|| malformed("run at"))?,
        finished_at: at(&h, "fin"),
        queue: h.remove("queue").ok_or_else(|| malformed("queue"))?,
        kind: h.remove("kind").unwrap_or_default(),
        payload: h.remove("payload").unwrap_or_default(),
        // An empty field is an absent one (completion erases the recipient by emptying it).
        recipient: h.remove("recipient").filter(|r| !r.is_empty()),
        last_error: h.remove("error").filter(|e| !e.is_empty()),
        failures: FailedAttempt::read_log(h.get("failures").map(String::as_str)),
    })
}
