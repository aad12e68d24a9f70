//! One measurement: what a query result counts as, and how it is recorded in a metric's status.
//!
//! Pure: a query's result (a number, no data, or an error) and the metric's conditions in, a
//! [`Measurement`] out; then the metric's counts move and the list is trimmed by [`retain`]. The
//! rule that matters most lives here: a result Prometheus could not give is inconclusive, never
//! a success.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::condition::{Conditions, Verdict};
use super::prometheus::{QueryError, QueryValue};
use crate::api::{Measurement, MeasurementOutcome, MetricStatus, OnEmpty};

/// Failed measurements kept per metric (the newest); every failure up to here.
pub const KEEP_FAILED: usize = 10;
/// Successful, and inconclusive, measurements kept per metric (the newest of each).
pub const KEEP_OTHERS: usize = 3;

/// What one query result counts as under a metric's conditions and `onEmpty`.
pub fn measurement(
    at: Timestamp,
    result: &Result<QueryValue, QueryError>,
    conditions: &Conditions,
    on_empty: OnEmpty,
) -> Measurement {
    let (outcome, value, message) = match result {
        Err(e) => (MeasurementOutcome::Inconclusive, None, Some(e.to_string())),
        Ok(QueryValue::Empty) => {
            let (outcome, word) = match on_empty {
                OnEmpty::Inconclusive => (MeasurementOutcome::Inconclusive, "inconclusive"),
                OnEmpty::Success => (MeasurementOutcome::Successful, "success"),
                OnEmpty::Failure => (MeasurementOutcome::Failed, "failure"),
            };
            (outcome, None, Some(format!("no data (onEmpty: {word})")))
        }
        Ok(QueryValue::Number { value, text }) => {
            let (outcome, message) = match conditions.judge(*value) {
                Ok(Verdict::Success) => (MeasurementOutcome::Successful, None),
                Ok(Verdict::Failure(condition)) => (MeasurementOutcome::Failed, Some(condition)),
                Ok(Verdict::Neither) => (
                    MeasurementOutcome::Inconclusive,
                    Some("neither successCondition nor failureCondition held".to_string()),
                ),
                Err(e) => (MeasurementOutcome::Inconclusive, Some(e)),
            };
            (outcome, Some(text.clone()), message)
        }
    };
    Measurement {
        at: Time(at),
        outcome,
        value,
        message,
    }
}

/// Adds a measurement to a metric's counts and list.
pub fn record(status: &mut MetricStatus, m: Measurement) {
    match m.outcome {
        MeasurementOutcome::Successful => {
            status.successful += 1;
            status.consecutive_successful += 1;
            status.consecutive_failed = 0;
        }
        MeasurementOutcome::Failed => {
            status.failed += 1;
            status.consecutive_failed += 1;
            status.consecutive_successful = 0;
        }
        // Neither a success nor a failure: it breaks both streaks.
        MeasurementOutcome::Inconclusive => {
            status.inconclusive += 1;
            status.consecutive_successful = 0;
            status.consecutive_failed = 0;
        }
    }
    status.measurements.push(m);
    retain(&mut status.measurements);
}

/// Trims a list (oldest first) to the newest [`KEEP_FAILED`] failures and the newest
/// [`KEEP_OTHERS`] of each other outcome, in their order. The newest measurement always stays.
pub fn retain(measurements: &mut Vec<Measurement>) {
    let (mut failed, mut successful, mut inconclusive) = (0, 0, 0);
    let mut keep: Vec<bool> = measurements
        .iter()
        .rev()
        .map(|m| {
            let (seen, cap) = match m.outcome {
                MeasurementOutcome::Failed => (&mut failed, KEEP_FAILED),
                MeasurementOutcome::Successful => (&mut successful, KEEP_OTHERS),
                MeasurementOutcome::Inconclusive => (&mut inconclusive, KEEP_OTHERS),
            };
            *seen += 1;
            *seen <= cap
        })
        .collect();
    keep.reverse();
    let mut keep = keep.into_iter();
    measurements.retain(|_| keep.next().unwrap_or(false));
}

#[cfg(test)]
#[path = "measure_tests.rs"]
mod tests;
