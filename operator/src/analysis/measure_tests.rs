use super::*;
use crate::analysis::condition::Condition;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn conditions(success: &str, failure: Option<&str>) -> Conditions {
    Conditions {
        success: Condition::compile(success).unwrap(),
        failure: failure.map(|f| Condition::compile(f).unwrap()),
    }
}

fn number(value: f64) -> Result<QueryValue, QueryError> {
    Ok(QueryValue::Number {
        value,
        text: value.to_string(),
    })
}

use MeasurementOutcome::{Failed, Inconclusive, Successful};

/// Conditions, the query's result and `onEmpty`; the outcome and message wanted.
type Case<'a> = (
    &'a Conditions,
    Result<QueryValue, QueryError>,
    OnEmpty,
    MeasurementOutcome,
    Option<&'a str>,
);

#[test]
fn a_result_counts_as_what_the_conditions_and_on_empty_say() {
    let both = conditions("result >= 0.95", Some("result < 0.5"));
    let only = conditions("result >= 0.95", None);
    let unreachable = Err(QueryError::Transport("connection refused".into()));
    let cases: Vec<Case> = vec![
        (&both, number(0.99), OnEmpty::Inconclusive, Successful, None),
        (
            &both,
            number(0.1),
            OnEmpty::Inconclusive,
            Failed,
            Some("result < 0.5"),
        ),
        (
            &both,
            number(0.7),
            OnEmpty::Inconclusive,
            Inconclusive,
            Some("neither successCondition nor failureCondition held"),
        ),
        (
            &only,
            number(0.7),
            OnEmpty::Inconclusive,
            Failed,
            Some("not (result >= 0.95)"),
        ),
        (
            &only,
            Ok(QueryValue::Empty),
            OnEmpty::Inconclusive,
            Inconclusive,
            Some("no data (onEmpty: inconclusive)"),
        ),
        (
            &only,
            Ok(QueryValue::Empty),
            OnEmpty::Success,
            Successful,
            Some("no data (onEmpty: success)"),
        ),
        (
            &only,
            Ok(QueryValue::Empty),
            OnEmpty::Failure,
            Failed,
            Some("no data (onEmpty: failure)"),
        ),
        // Prometheus unreachable is never a success, whatever onEmpty says.
        (
            &only,
            unreachable.clone(),
            OnEmpty::Success,
            Inconclusive,
            Some("Prometheus unreachable: connection refused"),
        ),
        (
            &only,
            Err(QueryError::NaN),
            OnEmpty::Success,
            Inconclusive,
            Some(
                "the query returned NaN (a division by zero, for example no requests in the window)",
            ),
        ),
    ];
    for (c, result, on_empty, outcome, message) in cases {
        let m = measurement(at(0), &result, c, on_empty);
        assert_eq!(
            (m.outcome, m.message.as_deref()),
            (outcome, message),
            "{result:?} onEmpty {on_empty:?}"
        );
        assert_eq!(m.at, Time(at(0)));
    }
}

#[test]
fn the_value_is_kept_as_prometheus_wrote_it() {
    let c = conditions("result <= 0.5", None);
    let inf = Ok(QueryValue::Number {
        value: f64::INFINITY,
        text: "+Inf".into(),
    });
    let m = measurement(at(0), &inf, &c, OnEmpty::Inconclusive);
    assert_eq!((m.outcome, m.value.as_deref()), (Failed, Some("+Inf")));
    let empty = measurement(at(0), &Ok(QueryValue::Empty), &c, OnEmpty::Success);
    assert_eq!(empty.value, None);
}

#[test]
fn a_condition_that_errors_on_a_value_is_inconclusive() {
    let c = conditions("int(result) < 3", None);
    let m = measurement(at(0), &number(f64::INFINITY), &c, OnEmpty::Inconclusive);
    assert_eq!(m.outcome, Inconclusive);
    assert!(m.message.unwrap().contains("int(result) < 3"));
}

fn taken(outcome: MeasurementOutcome, secs: i64) -> Measurement {
    Measurement {
        at: Time(at(secs)),
        outcome,
        value: Some(secs.to_string()),
        message: None,
    }
}

#[test]
fn counts_and_streaks_follow_the_outcomes() {
    let mut s = MetricStatus::named("errors");
    let outcomes = [
        Successful,
        Successful,
        Failed,
        Failed,
        Inconclusive,
        Successful,
    ];
    let streaks = [(1, 0), (2, 0), (0, 1), (0, 2), (0, 0), (1, 0)];
    for (i, (o, streak)) in outcomes.into_iter().zip(streaks).enumerate() {
        record(&mut s, taken(o, i as i64));
        assert_eq!(
            (s.consecutive_successful, s.consecutive_failed),
            streak,
            "after {i}"
        );
    }
    assert_eq!(
        (s.successful, s.failed, s.inconclusive, s.taken()),
        (3, 2, 1, 6)
    );
    assert_eq!(s.measurements.len(), 6);
}

#[test]
fn retention_keeps_every_failure_up_to_a_cap_and_the_last_few_others() {
    let mut s = MetricStatus::named("errors");
    // 30 measurements: a failure every third, the rest alternating success and inconclusive.
    for i in 0..30 {
        let o = match i % 3 {
            0 => Failed,
            1 => Successful,
            _ => Inconclusive,
        };
        record(&mut s, taken(o, i));
    }
    let count = |o| s.measurements.iter().filter(|m| m.outcome == o).count();
    assert_eq!(
        (count(Failed), count(Successful), count(Inconclusive)),
        (KEEP_FAILED, KEEP_OTHERS, KEEP_OTHERS)
    );
    // Oldest first, the newest last, and the newest of each kind kept.
    let times: Vec<i64> = s
        .measurements
        .iter()
        .map(|m| m.at.0.as_second() - 1_800_000_000)
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    assert_eq!(times.last(), Some(&29));
    assert_eq!(
        times.first(),
        Some(&0),
        "all ten failures (0, 3, …, 27) kept"
    );
    assert_eq!(
        (s.successful, s.failed, s.inconclusive),
        (10, 10, 10),
        "counts are never trimmed"
    );
    // One more failure drops the oldest one.
    record(&mut s, taken(Failed, 30));
    assert_eq!(
        s.measurements
            .first()
            .map(|m| m.at.0.as_second() - 1_800_000_000),
        Some(3)
    );
}

#[test]
fn retention_of_a_short_list_keeps_everything() {
    let mut list = vec![
        taken(Successful, 0),
        taken(Failed, 1),
        taken(Inconclusive, 2),
    ];
    let before = list.clone();
    retain(&mut list);
    assert_eq!(list, before);
    let mut empty = vec![];
    retain(&mut empty);
    assert!(empty.is_empty());
}
