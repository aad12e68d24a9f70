//! `spec.schedule`: the latest scheduled tick at a given time, a pure function of the cron
//! expression and the clock.
//!
//! The operator keeps the timer itself rather than owning a CronJob: a scheduled re-ingest must
//! be the same Job the change path starts (same revision, same collection naming, same
//! unless-unchanged check and status), and a CronJob would either duplicate that template or
//! need the operator to rewrite it on every change. The tick is an input of the revision, so a
//! tick that passes while the operator is down still runs exactly once when it is back, and a
//! restart never runs a tick twice.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;
use k8s_openapi::jiff::Timestamp;

/// A parsed `spec.schedule`.
#[derive(Clone, Debug)]
pub struct Schedule(Cron);

impl Schedule {
    /// Parses the five-field cron expression (UTC) of `field`; the error names the field.
    pub fn parse(field: &str, expression: &str) -> Result<Self, String> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "{field}: {expression:?} has {fields} fields; expected five (minute hour day-of-month month day-of-week)"
            ));
        }
        Cron::from_str(expression.trim())
            .map(Self)
            .map_err(|e| format!("{field}: {expression:?} is not a cron expression: {e}"))
    }

    /// The latest tick at or before `now`; none if the expression never matched before.
    pub fn latest(&self, now: Timestamp) -> Option<Timestamp> {
        let tick = self
            .0
            .find_previous_occurrence(&to_chrono(now)?, true)
            .ok()?;
        Timestamp::from_second(tick.timestamp()).ok()
    }

    /// The first tick after `now`.
    pub fn next(&self, now: Timestamp) -> Option<Timestamp> {
        let tick = self.0.find_next_occurrence(&to_chrono(now)?, false).ok()?;
        Timestamp::from_second(tick.timestamp()).ok()
    }
}

fn to_chrono(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ticks_are_the_latest_and_next_matches_in_utc() {
        let daily = Schedule::parse("spec.schedule", "0 3 * * *").unwrap();
        let cases = [
            (
                "2026-11-26T02:59:59Z",
                "2026-11-25T03:00:00Z",
                "2026-11-26T03:00:00Z",
            ),
            (
                "2026-11-26T03:00:00Z",
                "2026-11-26T03:00:00Z",
                "2026-11-27T03:00:00Z",
            ),
            (
                "2026-11-26T15:30:00Z",
                "2026-11-26T03:00:00Z",
                "2026-11-27T03:00:00Z",
            ),
        ];
        for (now, latest, next) in cases {
            assert_eq!(daily.latest(at(now)), Some(at(latest)), "latest at {now}");
            assert_eq!(daily.next(at(now)), Some(at(next)), "next at {now}");
        }
        let quarter = Schedule::parse("spec.schedule", "*/15 * * * *").unwrap();
        assert_eq!(
            quarter.latest(at("2026-11-26T10:44:10Z")),
            Some(at("2026-11-26T10:30:00Z"))
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        for bad in [
            "0 3 * *",
            "* * * * * *",
            "61 * * * *",
            "0 25 * * *",
            "0 3 * * funday",
        ] {
            let err = Schedule::parse("spec.schedule", bad).unwrap_err();
            assert!(err.starts_with("spec.schedule: "), "{bad}: {err}");
        }
    }
}
