//! Cron expressions with seconds (`*/2 * * * * *`); five fields mean second 0.

use chrono::{DateTime, SubsecRound as _, Utc};
use croner::Cron;

#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    cron: Cron,
}

impl Schedule {
    /// # Errors
    /// A message naming what is wrong with `expression`.
    pub fn parse(expression: &str) -> Result<Self, String> {
        const FIELDS: &str = "second minute hour day-of-month month day-of-week, or the last five";
        let fields = expression.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            // croner's own message lists the fields in its order, seconds last; ours is first.
            return Err(format!(
                "{expression:?} is not a cron expression: expected six fields ({FIELDS}), got {fields}"
            ));
        }
        let cron = Cron::new(expression.trim())
            .with_seconds_optional()
            .parse()
            .map_err(|e| format!("{expression:?} is not a cron expression ({FIELDS}): {e}"))?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
        })
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// The first tick strictly after `after` (ticks are whole seconds).
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.trunc_subsecs(0), false)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn six_fields_tick_on_seconds_and_five_on_minutes() {
        let every_two = Schedule::parse("*/2 * * * * *").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(every_two.next_after(at(10, 0, 1)), Some(at(10, 0, 2)));
        assert_eq!(
            every_two.next_after(at(10, 0, 2)),
            Some(at(10, 0, 4)),
            "strictly after"
        );
        let hourly = Schedule::parse("0 * * * *").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hourly.next_after(at(10, 0, 1)), Some(at(11, 0, 0)));
        let sunday = Schedule::parse("0 0 2 * * SUN").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sunday.next_after(at(10, 0, 0)),
            Some(
                Utc.with_ymd_and_hms(2026, 3, 8, 2, 0, 0)
                    .single()
                    .unwrap_or_default()
            ),
            "2026-03-01 is a Sunday, its 2 AM has passed"
        );
        assert!(Schedule::parse("every minute").is_err());
    }

    #[test]
    fn a_wrong_expression_is_told_with_the_fields_in_our_order() {
        for wrong in ["1 2 3", "0 0 2 * * SUN extra", "61 * * * * *"] {
            let error = Schedule::parse(wrong).err().unwrap_or_default();
            assert!(
                error.contains("second minute hour day-of-month month day-of-week"),
                "{error}"
            );
            assert!(!error.contains("optional second"), "{error}");
        }
    }
}
