//! Every rule of a metric's step, and of a run's, as a table.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::analysis::measure::record;
use crate::api::Measurement;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

const LIMITS: Limits = Limits {
    count: 5,
    interval_seconds: 30,
    initial_delay_seconds: 0,
    failure_limit: 0,
    consecutive_failure_limit: None,
    consecutive_success_limit: None,
    inconclusive_limit: 0,
};

/// A metric after the measurements in `taken` (`S`uccessful, `F`ailed, `I`nconclusive), taken
/// every 30 s from the start.
fn after(taken: &str) -> MetricStatus {
    let mut s = MetricStatus::named("errors");
    for (i, c) in taken.chars().enumerate() {
        let outcome = match c {
            'S' => MeasurementOutcome::Successful,
            'F' => MeasurementOutcome::Failed,
            _ => MeasurementOutcome::Inconclusive,
        };
        let failed = outcome == MeasurementOutcome::Failed;
        record(
            &mut s,
            Measurement {
                at: Time(at(30 * i as i64)),
                outcome,
                value: Some(format!("0.{i}")),
                message: failed.then(|| "not (result <= 0.05)".into()),
            },
        );
    }
    s
}

/// The kind of step, with what decides a test (the failure's limit, the time to wait for).
fn kind(step: &MetricStep) -> String {
    match step {
        MetricStep::Measure => "measure".into(),
        MetricStep::Wait { until } => format!("wait {}", until.as_second() - 1_800_000_000),
        MetricStep::Successful => "successful".into(),
        MetricStep::Failed(f) => format!("failed: {}", f.limit),
        MetricStep::Inconclusive(_) => "inconclusive".into(),
    }
}

#[test]
fn a_metric_steps_by_its_limits() {
    let l = LIMITS;
    #[rustfmt::skip]
    let cases: Vec<(&str, Limits, &str, i64, &str)> = vec![
        // Scheduling: at the start (after the initial delay), then an interval after the last.
        ("first measurement at once", l, "", 0, "measure"),
        ("initial delay", Limits { initial_delay_seconds: 60, ..l }, "", 10, "wait 60"),
        ("initial delay over", Limits { initial_delay_seconds: 60, ..l }, "", 60, "measure"),
        ("interval not over", l, "S", 10, "wait 30"),
        ("interval over", l, "S", 30, "measure"),
        ("late is due at once", l, "SS", 500, "measure"),
        // Count.
        ("all taken and passed", l, "SSSSS", 120, "successful"),
        ("count lowered below what was taken", Limits { count: 3, ..l }, "SSSS", 90, "successful"),
        // Total failures.
        ("one failure, none tolerated", l, "F", 0, "failed: 1 failed, failureLimit 0"),
        ("one failure tolerated", Limits { failure_limit: 1, ..l }, "F", 30, "measure"),
        ("one more than tolerated", Limits { failure_limit: 1, ..l }, "FSF", 60, "failed: 2 failed, failureLimit 1"),
        ("tolerated failures then passes", Limits { failure_limit: 1, ..l }, "SFSSS", 120, "successful"),
        // Failures in a row, beside the total.
        ("apart, within both limits", Limits { failure_limit: 3, consecutive_failure_limit: Some(1), ..l }, "FSF", 90, "measure"),
        ("in a row", Limits { failure_limit: 3, consecutive_failure_limit: Some(1), ..l }, "SFF", 60, "failed: 2 failed in a row, consecutiveFailureLimit 1"),
        ("an inconclusive one breaks the streak", Limits { failure_limit: 3, consecutive_failure_limit: Some(1), inconclusive_limit: 1, ..l }, "FIF", 90, "measure"),
        ("the total still counts", Limits { failure_limit: 1, consecutive_failure_limit: Some(5), ..l }, "FSF", 60, "failed: 2 failed, failureLimit 1"),
        // Inconclusive.
        ("no data, none tolerated", l, "I", 0, "inconclusive"),
        ("no data tolerated", Limits { inconclusive_limit: 1, ..l }, "I", 30, "measure"),
        ("failure wins over inconclusive", Limits { inconclusive_limit: 0, ..l }, "IF", 30, "failed: 1 failed, failureLimit 0"),
        ("only inconclusive within the limit is no pass", Limits { count: 3, inconclusive_limit: 3, ..l }, "III", 60, "inconclusive"),
        ("only tolerated failures is no pass", Limits { count: 2, failure_limit: 2, ..l }, "FF", 30, "inconclusive"),
        // Successes in a row pass early.
        ("consecutive successes", Limits { count: 10, consecutive_success_limit: Some(2), ..l }, "SS", 30, "successful"),
        ("streak broken by inconclusive", Limits { count: 10, consecutive_success_limit: Some(2), inconclusive_limit: 2, ..l }, "SIS", 90, "measure"),
        ("streak after a tolerated failure", Limits { count: 10, failure_limit: 1, consecutive_success_limit: Some(2), ..l }, "FSS", 60, "successful"),
        // Early success: stop once the outcome cannot change.
        ("remaining failures could not fail it", Limits { failure_limit: 2, inconclusive_limit: 2, ..l }, "SSS", 60, "successful"),
        ("remaining failures could still fail it", Limits { failure_limit: 2, inconclusive_limit: 2, ..l }, "SS", 60, "measure"),
        ("remaining could still be inconclusive", Limits { failure_limit: 5, inconclusive_limit: 1, ..l }, "SSS", 90, "measure"),
        ("remaining could still fail in a row", Limits { failure_limit: 5, inconclusive_limit: 5, consecutive_failure_limit: Some(1), ..l }, "SSS", 90, "measure"),
        ("fixed with a streak limit too", Limits { failure_limit: 5, inconclusive_limit: 5, consecutive_failure_limit: Some(2), ..l }, "SSS", 60, "successful"),
        ("nothing can change it but no success yet", Limits { failure_limit: 5, inconclusive_limit: 5, ..l }, "I", 30, "measure"),
    ];
    for (name, limits, taken, now, want) in cases {
        let step = metric_step(&limits, &after(taken), at(0), at(now));
        assert_eq!(kind(&step), want, "{name}");
    }
}

#[test]
fn a_failure_names_the_metric_its_value_and_the_condition() {
    let step = metric_step(&LIMITS, &after("SF"), at(0), at(60));
    let MetricStep::Failed(f) = step else {
        panic!("failed: {step:?}");
    };
    assert_eq!(
        f,
        MetricFailure {
            metric: "errors".into(),
            value: Some("0.1".into()),
            condition: "not (result <= 0.05)".into(),
            limit: "1 failed, failureLimit 0".into(),
        }
    );
    assert_eq!(
        f.to_string(),
        "metric errors failed with result 0.1: not (result <= 0.05) (1 failed, failureLimit 0)"
    );
    let empty = MetricFailure {
        value: None,
        condition: "no data (onEmpty: failure)".into(),
        ..f
    };
    assert_eq!(
        empty.to_string(),
        "metric errors failed: no data (onEmpty: failure) (1 failed, failureLimit 0)"
    );
}

#[test]
fn an_inconclusive_metric_says_why() {
    let mut s = after("I");
    s.measurements[0].message = Some("Prometheus unreachable: connection refused".into());
    let MetricStep::Inconclusive(why) = metric_step(&LIMITS, &s, at(0), at(30)) else {
        panic!("inconclusive");
    };
    assert_eq!(
        why,
        "metric errors: 1 inconclusive, inconclusiveLimit 0; last: Prometheus unreachable: connection refused"
    );
}

#[test]
fn counts_decide_not_the_trimmed_list() {
    // A status whose list lost the failures (trimmed, or edited) still fails on its counts.
    let mut s = after("SSF");
    s.measurements
        .retain(|m| m.outcome != MeasurementOutcome::Failed);
    let step = metric_step(&LIMITS, &s, at(0), at(90));
    assert!(
        matches!(step, MetricStep::Failed(ref f) if f.condition == "failed"),
        "{step:?}"
    );
    // Counts without a list: measure now rather than wait forever.
    let mut bare = after("S");
    bare.measurements.clear();
    assert_eq!(
        metric_step(&LIMITS, &bare, at(0), at(1)),
        MetricStep::Measure
    );
}

fn failed(metric: &str) -> MetricStep {
    MetricStep::Failed(MetricFailure {
        metric: metric.into(),
        value: Some("1".into()),
        condition: "c".into(),
        limit: "l".into(),
    })
}

/// A name, the metrics' steps; the run's phase, the metrics due, when to wake and the message.
type RunCase = (
    &'static str,
    Vec<MetricStep>,
    AnalysisPhase,
    Vec<usize>,
    Option<i64>,
    Option<&'static str>,
);

#[test]
fn a_run_combines_its_metrics() {
    use AnalysisPhase::*;
    let wait = |s| MetricStep::Wait { until: at(s) };
    let inconclusive = |why: &str| MetricStep::Inconclusive(why.into());
    #[rustfmt::skip]
    let cases: Vec<RunCase> = vec![
        ("all passed", vec![MetricStep::Successful, MetricStep::Successful], Successful, vec![], None, Some("every metric passed")),
        ("some due, some waiting", vec![MetricStep::Measure, wait(60), wait(30), MetricStep::Successful, MetricStep::Measure], Running, vec![0, 4], Some(30), None),
        ("one waiting, one passed", vec![MetricStep::Successful, wait(90)], Running, vec![], Some(90), None),
        ("a failure ends the run at once", vec![MetricStep::Measure, failed("p99"), failed("errors")], Failed, vec![], None, Some("metric p99 failed with result 1: c (l)")),
        ("failure over inconclusive", vec![inconclusive("x"), failed("errors")], Failed, vec![], None, Some("metric errors failed with result 1: c (l)")),
        ("inconclusive ends the run", vec![MetricStep::Successful, inconclusive("no data"), wait(30)], Inconclusive, vec![], None, Some("no data")),
    ];
    for (name, steps, phase, measure, wake, message) in cases {
        let run = run_step(&steps);
        assert_eq!(run.phase, phase, "{name}");
        assert_eq!(run.measure, measure, "{name}");
        assert_eq!(run.wake_at, wake.map(at), "{name}");
        assert_eq!(run.message.as_deref(), message, "{name}");
        assert_eq!(run.failure.is_some(), phase == Failed, "{name}");
    }
}

#[test]
fn limits_come_from_the_spec_with_floors() {
    let m: crate::api::AnalysisMetric = serde_yaml::from_str(
        "{name: x, builtin: errorRatio, threshold: 0.1, count: 0, intervalSeconds: -5, consecutiveSuccessLimit: 0}",
    )
    .unwrap();
    let l = Limits::of(&m);
    assert_eq!(
        (l.count, l.interval_seconds, l.consecutive_success_limit),
        (1, 1, Some(1))
    );
    let defaults: crate::api::AnalysisMetric =
        serde_yaml::from_str("{name: x, builtin: errorRatio, threshold: 0.1}").unwrap();
    assert_eq!(Limits::of(&defaults), Limits { count: 5, ..LIMITS });
}
