//! What an analysis run reports in `status.analysis`: its phase, and per metric the counts the
//! decision is made from plus a bounded list of measurements. The counts, not the list, decide
//! (`crate::analysis::run`): the list only keeps what a person needs to see why, every failure
//! up to a cap and the last few of the rest (`crate::analysis::retain`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Color;

/// Where an analysis runs.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum AnalysisStage {
    /// Before the selector moves; failing it fails the rollout.
    PrePromotion,
    /// After the selector moved; failing it rolls traffic back.
    PostPromotion,
    /// At a canary's analysis steps or in its background; failing it aborts the canary.
    Canary,
}

/// Where an analysis run, or one of its metrics, stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AnalysisPhase {
    /// Measurements are still to be taken.
    #[default]
    Running,
    /// Every metric passed.
    Successful,
    /// A metric went over its failure limits.
    Failed,
    /// A metric went over its inconclusive limit, or ended with no successful measurement:
    /// never a reason to promote.
    Inconclusive,
}

impl AnalysisPhase {
    /// Whether no more measurements will be taken.
    pub fn is_done(self) -> bool {
        self != AnalysisPhase::Running
    }
}

/// How one measurement came out.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementOutcome {
    Successful,
    Failed,
    /// No data, a result that is not one number, Prometheus unreachable, or neither condition
    /// held.
    Inconclusive,
}

/// One analysis run: a stage of one revision on one colour.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// `prePromotion` or `postPromotion`.
    pub stage: AnalysisStage,
    /// The revision under analysis.
    pub revision: String,
    /// The colour that revision runs on.
    pub color: Color,
    /// `Running`, `Successful`, `Failed` or `Inconclusive`.
    #[serde(default)]
    pub phase: AnalysisPhase,
    /// When the run started; each metric's `initialDelaySeconds` counts from here.
    pub started_at: Time,
    /// Why the run ended as it did (the failing metric, its value and the condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Each metric of the stage, in the order the stage names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricStatus>,
}

/// The measurements of one metric in one run.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// The metric's name in `analysis.metrics`.
    pub name: String,
    #[serde(default)]
    pub phase: AnalysisPhase,
    /// Successful measurements so far.
    #[serde(default)]
    pub successful: i32,
    /// Failed measurements so far.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive measurements so far.
    #[serde(default)]
    pub inconclusive: i32,
    /// Successful measurements since the last one that was not.
    #[serde(default)]
    pub consecutive_successful: i32,
    /// Failed measurements since the last one that was not.
    #[serde(default)]
    pub consecutive_failed: i32,
    /// The latest measurements, oldest first: every failed one (up to a cap, the newest kept) and
    /// the last few of the others. The newest measurement is always here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

impl MetricStatus {
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Measurements taken so far.
    pub fn taken(&self) -> i32 {
        self.successful + self.failed + self.inconclusive
    }
}

/// One query and what it came to.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// When the query ran.
    pub at: Time,
    pub outcome: MeasurementOutcome,
    /// The result as Prometheus wrote it (`0.012`, `+Inf`); absent when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it was not a success: the condition that failed, no data, or the query's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
