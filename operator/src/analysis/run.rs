//! The heart of analysis: given a metric's limits, its counts so far and `now`, what comes next
//! (measure now, wait, or a verdict), and the verdict of a run of several metrics.
//!
//! Pure and clock-free like the cutover's `decide`: the caller measures when told to, records the
//! measurement (`measure::record`) and asks again. Decisions use the counts in status, never the
//! trimmed list, so retention cannot change an outcome.
//!
//! The rules, in the order they are checked:
//! 1. more failures than `failureLimit`, or more in a row than `consecutiveFailureLimit`: Failed;
//! 2. more inconclusive measurements than `inconclusiveLimit`: Inconclusive;
//! 3. `consecutiveSuccessLimit` successes in a row: Successful, early;
//! 4. the outcome cannot change any more (even if every remaining measurement failed, or was
//!    inconclusive, no limit would be passed), or all `count` are taken: Successful when at least
//!    one measurement succeeded, else Inconclusive (no data is never a pass);
//! 5. otherwise the next measurement is due `initialDelaySeconds` after the run started, then
//!    `intervalSeconds` after the previous one.

use std::fmt;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{AnalysisMetric, AnalysisPhase, MeasurementOutcome, MetricStatus};

/// A metric's limits, as the spec gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub count: i32,
    pub interval_seconds: i32,
    pub initial_delay_seconds: i32,
    pub failure_limit: i32,
    pub consecutive_failure_limit: Option<i32>,
    pub consecutive_success_limit: Option<i32>,
    pub inconclusive_limit: i32,
}

impl Limits {
    pub fn of(m: &AnalysisMetric) -> Self {
        Self {
            count: m.count.max(1),
            interval_seconds: m.interval_seconds.max(1),
            initial_delay_seconds: m.initial_delay_seconds.max(0),
            failure_limit: m.failure_limit.max(0),
            consecutive_failure_limit: m.consecutive_failure_limit.map(|l| l.max(0)),
            consecutive_success_limit: m.consecutive_success_limit.map(|l| l.max(1)),
            inconclusive_limit: m.inconclusive_limit.max(0),
        }
    }
}

/// Why a metric failed: the metric, its value and the condition, for the condition message and
/// the Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricFailure {
    pub metric: String,
    /// The last failed measurement's value; none for an empty result counted as a failure.
    pub value: Option<String>,
    /// What failed it: the condition, or `no data (onEmpty: failure)`.
    pub condition: String,
    /// Which limit was passed.
    pub limit: String,
}

impl fmt::Display for MetricFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "metric {} failed", self.metric)?;
        if let Some(value) = &self.value {
            write!(f, " with result {value}")?;
        }
        write!(f, ": {} ({})", self.condition, self.limit)
    }
}

/// What to do next about one metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricStep {
    /// Take a measurement now.
    Measure,
    /// Nothing to do before this time.
    Wait {
        until: Timestamp,
    },
    Successful,
    Failed(MetricFailure),
    /// With the reason.
    Inconclusive(String),
}

impl MetricStep {
    pub fn phase(&self) -> AnalysisPhase {
        match self {
            MetricStep::Measure | MetricStep::Wait { .. } => AnalysisPhase::Running,
            MetricStep::Successful => AnalysisPhase::Successful,
            MetricStep::Failed(_) => AnalysisPhase::Failed,
            MetricStep::Inconclusive(_) => AnalysisPhase::Inconclusive,
        }
    }
}

fn seconds(s: i32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(s))
}

/// The next step of one metric of a run that started at `started`.
pub fn metric_step(
    limits: &Limits,
    status: &MetricStatus,
    started: Timestamp,
    now: Timestamp,
) -> MetricStep {
    let l = limits;
    let s = status;
    if s.failed > l.failure_limit {
        let limit = format!("{} failed, failureLimit {}", s.failed, l.failure_limit);
        return MetricStep::Failed(failure(s, limit));
    }
    if let Some(max) = l
        .consecutive_failure_limit
        .filter(|max| s.consecutive_failed > *max)
    {
        let limit = format!(
            "{} failed in a row, consecutiveFailureLimit {max}",
            s.consecutive_failed
        );
        return MetricStep::Failed(failure(s, limit));
    }
    if s.inconclusive > l.inconclusive_limit {
        let last = last_message(s, MeasurementOutcome::Inconclusive);
        return MetricStep::Inconclusive(format!(
            "metric {}: {} inconclusive, inconclusiveLimit {}; last: {last}",
            s.name, s.inconclusive, l.inconclusive_limit
        ));
    }
    if l.consecutive_success_limit
        .is_some_and(|n| s.consecutive_successful >= n)
    {
        return MetricStep::Successful;
    }
    let remaining = (l.count - s.taken()).max(0);
    let may_fail = s.failed + remaining > l.failure_limit
        || l.consecutive_failure_limit
            .is_some_and(|max| s.consecutive_failed + remaining > max);
    let may_be_inconclusive = s.inconclusive + remaining > l.inconclusive_limit;
    if remaining == 0 || (!may_fail && !may_be_inconclusive && s.successful > 0) {
        if s.successful > 0 {
            return MetricStep::Successful;
        }
        return MetricStep::Inconclusive(format!(
            "metric {}: no successful measurement in {}; last: {}",
            s.name,
            s.taken(),
            last_message(s, MeasurementOutcome::Inconclusive)
        ));
    }
    let due = match s.measurements.last() {
        None if s.taken() == 0 => started + seconds(l.initial_delay_seconds),
        None => now,
        Some(last) => last.at.0 + seconds(l.interval_seconds),
    };
    if now >= due {
        MetricStep::Measure
    } else {
        MetricStep::Wait { until: due }
    }
}

/// The failure of a metric whose last failed measurement explains it.
fn failure(s: &MetricStatus, limit: String) -> MetricFailure {
    let last = s
        .measurements
        .iter()
        .rev()
        .find(|m| m.outcome == MeasurementOutcome::Failed);
    MetricFailure {
        metric: s.name.clone(),
        value: last.and_then(|m| m.value.clone()),
        condition: last
            .and_then(|m| m.message.clone())
            .unwrap_or_else(|| "failed".into()),
        limit,
    }
}

fn last_message(s: &MetricStatus, outcome: MeasurementOutcome) -> String {
    s.measurements
        .iter()
        .rev()
        .find(|m| m.outcome == outcome)
        .and_then(|m| m.message.clone())
        .unwrap_or_else(|| "no measurement".into())
}

/// What a run of several metrics does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunStep {
    pub phase: AnalysisPhase,
    /// The metrics (indices into the run's metrics) to measure now.
    pub measure: Vec<usize>,
    /// When to look again, if no measurement is due now.
    pub wake_at: Option<Timestamp>,
    /// Why the run ended as it did.
    pub message: Option<String>,
    /// The metric that failed the run, when one did.
    pub failure: Option<MetricFailure>,
}

/// Combines the steps of a run's metrics (in spec order): the first failure fails the run at
/// once, then the first inconclusive metric makes it inconclusive, and it succeeds only when every
/// metric has. Otherwise it runs on: these metrics are due, and the earliest wait wakes it.
pub fn run_step(steps: &[MetricStep]) -> RunStep {
    let mut run = RunStep {
        phase: AnalysisPhase::Running,
        measure: vec![],
        wake_at: None,
        message: None,
        failure: None,
    };
    if let Some(failure) = steps.iter().find_map(|s| match s {
        MetricStep::Failed(f) => Some(f),
        _ => None,
    }) {
        run.phase = AnalysisPhase::Failed;
        run.message = Some(failure.to_string());
        run.failure = Some(failure.clone());
        return run;
    }
    if let Some(why) = steps.iter().find_map(|s| match s {
        MetricStep::Inconclusive(why) => Some(why),
        _ => None,
    }) {
        run.phase = AnalysisPhase::Inconclusive;
        run.message = Some(why.clone());
        return run;
    }
    for (i, step) in steps.iter().enumerate() {
        match step {
            MetricStep::Measure => run.measure.push(i),
            MetricStep::Wait { until } => {
                run.wake_at = Some(run.wake_at.map_or(*until, |w| w.min(*until)));
            }
            _ => {}
        }
    }
    if run.measure.is_empty() && run.wake_at.is_none() {
        run.phase = AnalysisPhase::Successful;
        run.message = Some("every metric passed".into());
    }
    run
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
