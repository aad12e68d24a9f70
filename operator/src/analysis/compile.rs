//! A spec's `rollout.analysis`, compiled once per generation: templates parsed, conditions
//! compiled, built-in metrics turned into queries. A problem becomes a [`SpecError`] naming the
//! field, which the pipeline reports as a Degraded condition; the schema's CEL rules normally
//! refuse the structural ones first, and are repeated here so the operator never trusts them.
//!
//! [`CompiledAnalysis`] is also what the rollout drives a run with: [`CompiledAnalysis::start`],
//! then [`CompiledAnalysis::advance`] on every decision, and [`CompiledAnalysis::record`] with
//! each query result that comes back.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::builtin;
use super::condition::{Condition, Conditions};
use super::measure;
use super::prometheus::{QueryError, QueryValue};
use super::run::{self, Limits, MetricStep, RunStep};
use super::template::{Template, TemplateError, Vars};
use crate::api::{
    AnalysisMetric, AnalysisPhase, AnalysisRunStatus, AnalysisSpec, AnalysisStage, Color,
    MetricStatus, OnEmpty,
};

const FIELD: &str = "spec.rollout.analysis";

/// A field of `spec.rollout.analysis` the operator cannot use, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn error(field: String, message: impl ToString) -> SpecError {
    SpecError {
        field,
        message: message.to_string(),
    }
}

/// One metric, ready to measure.
#[derive(Debug, PartialEq)]
pub struct CompiledMetric {
    pub name: String,
    pub template: Template,
    pub conditions: Conditions,
    pub on_empty: OnEmpty,
    pub limits: Limits,
}

/// A spec's analysis, ready to run.
#[derive(Debug, PartialEq)]
pub struct CompiledAnalysis {
    /// `prometheus.address`, when the spec names one.
    pub address: Option<String>,
    pub metrics: Vec<CompiledMetric>,
    pre_promotion: Vec<usize>,
    post_promotion: Vec<usize>,
    canary: Vec<usize>,
}

/// Compiles `spec.rollout.analysis`; the first problem found is the error.
pub fn compile(spec: &AnalysisSpec) -> Result<CompiledAnalysis, SpecError> {
    let mut seen = BTreeSet::new();
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    for (i, m) in spec.metrics.iter().enumerate() {
        let field = format!("{FIELD}.metrics[{i}]");
        if !seen.insert(m.name.as_str()) {
            let message = format!("metric name {:?} is used twice", m.name);
            return Err(error(format!("{field}.name"), message));
        }
        metrics.push(metric(&field, m)?);
    }
    let stage = |name: &str, names: Option<&Vec<String>>| -> Result<Vec<usize>, SpecError> {
        let mut slots: Vec<usize> = vec![];
        for (j, n) in names.into_iter().flatten().enumerate() {
            let Some(slot) = spec.metrics.iter().position(|m| &m.name == n) else {
                let field = format!("{FIELD}.{name}.metrics[{j}]");
                return Err(error(
                    field,
                    format!("no metric named {n:?} in {FIELD}.metrics"),
                ));
            };
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        Ok(slots)
    };
    let pre_promotion = stage(
        "prePromotion",
        spec.pre_promotion.as_ref().map(|s| &s.metrics),
    )?;
    let post_promotion = stage(
        "postPromotion",
        spec.post_promotion.as_ref().map(|s| &s.metrics),
    )?;
    let canary = stage("canary", spec.canary.as_ref().map(|s| &s.metrics))?;
    Ok(CompiledAnalysis {
        address: spec.prometheus.as_ref().map(|p| p.address.clone()),
        metrics,
        pre_promotion,
        post_promotion,
        canary,
    })
}

fn metric(field: &str, m: &AnalysisMetric) -> Result<CompiledMetric, SpecError> {
    let condition = |name: &str, source: &str| {
        Condition::compile(source).map_err(|e| error(format!("{field}.{name}"), e))
    };
    let (query, conditions) = match (&m.query, m.builtin) {
        (Some(query), None) => {
            if m.threshold.is_some() {
                let message = "threshold is for builtin metrics; write it into successCondition";
                return Err(error(format!("{field}.threshold"), message));
            }
            let Some(success) = &m.success_condition else {
                return Err(error(
                    format!("{field}.successCondition"),
                    "a query needs one",
                ));
            };
            let failure = m.failure_condition.as_deref();
            let conditions = Conditions {
                success: condition("successCondition", success)?,
                failure: failure
                    .map(|f| condition("failureCondition", f))
                    .transpose()?,
            };
            (query.clone(), conditions)
        }
        (None, Some(b)) => {
            let Some(threshold) = m.threshold.filter(|t| t.is_finite()) else {
                let message =
                    "a builtin metric needs a threshold (success when result <= threshold)";
                return Err(error(format!("{field}.threshold"), message));
            };
            if m.success_condition.is_some() || m.failure_condition.is_some() {
                let message = "a builtin metric takes a threshold, not conditions";
                return Err(error(format!("{field}.successCondition"), message));
            }
            let conditions = Conditions {
                success: Condition::at_most(threshold),
                failure: None,
            };
            (builtin::query(b, m.interval_seconds), conditions)
        }
        _ => {
            return Err(error(
                field.to_string(),
                "give exactly one of query or builtin",
            ));
        }
    };
    let template = Template::parse(&query).map_err(|e| error(format!("{field}.query"), e))?;
    Ok(CompiledMetric {
        name: m.name.clone(),
        template,
        conditions,
        on_empty: m.on_empty,
        limits: Limits::of(m),
    })
}

impl CompiledAnalysis {
    /// The metrics (indices into [`Self::metrics`]) a stage runs; empty when it has none.
    pub fn stage(&self, stage: AnalysisStage) -> &[usize] {
        match stage {
            AnalysisStage::PrePromotion => &self.pre_promotion,
            AnalysisStage::PostPromotion => &self.post_promotion,
            AnalysisStage::Canary => &self.canary,
        }
    }

    /// The Prometheus to ask: the spec's, else the operator's default.
    pub fn address<'a>(&'a self, default: Option<&'a str>) -> Option<&'a str> {
        self.address.as_deref().or(default)
    }

    /// A new run of `stage` for `revision` on `color`, started `now`.
    pub fn start(
        &self,
        stage: AnalysisStage,
        revision: &str,
        color: Color,
        now: Timestamp,
    ) -> AnalysisRunStatus {
        AnalysisRunStatus {
            stage,
            revision: revision.to_string(),
            color,
            phase: AnalysisPhase::Running,
            started_at: Time(now),
            message: None,
            metrics: self
                .stage(stage)
                .iter()
                .map(|&i| MetricStatus::named(&self.metrics[i].name))
                .collect(),
        }
    }

    fn find(&self, name: &str) -> Option<&CompiledMetric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Decides the run's next step at `now` and writes the phases into it. A run that is over
    /// stays as it ended. `RunStep::measure` holds indices into `run.metrics`.
    pub fn advance(&self, run: &mut AnalysisRunStatus, now: Timestamp) -> RunStep {
        let started = run.started_at.0;
        let steps: Vec<MetricStep> = run
            .metrics
            .iter()
            .map(|s| match self.find(&s.name) {
                Some(m) => run::metric_step(&m.limits, s, started, now),
                None => {
                    MetricStep::Inconclusive(format!("metric {} is no longer in the spec", s.name))
                }
            })
            .collect();
        for (status, step) in run.metrics.iter_mut().zip(&steps) {
            if !status.phase.is_done() {
                status.phase = step.phase();
            }
        }
        let step = run::run_step(&steps);
        if !run.phase.is_done() {
            run.phase = step.phase;
            run.message.clone_from(&step.message);
        }
        step
    }

    /// The query of the run's metric at `slot`, with the run's values in place.
    pub fn query(
        &self,
        run: &AnalysisRunStatus,
        slot: usize,
        namespace: &str,
        pipeline: &str,
    ) -> Option<Result<String, TemplateError>> {
        let metric = self.find(&run.metrics.get(slot)?.name)?;
        let vars = Vars {
            namespace,
            pipeline,
            revision: &run.revision,
            color: run.color,
        };
        Some(metric.template.render(&vars))
    }

    /// Records the result of the query of the run's metric at `slot`, taken `at`.
    pub fn record(
        &self,
        run: &mut AnalysisRunStatus,
        slot: usize,
        result: &Result<QueryValue, QueryError>,
        at: Timestamp,
    ) {
        let Some(status) = run.metrics.get_mut(slot) else {
            return;
        };
        let Some(metric) = self.find(&status.name) else {
            return;
        };
        let m = measure::measurement(at, result, &metric.conditions, metric.on_empty);
        measure::record(status, m);
    }
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
