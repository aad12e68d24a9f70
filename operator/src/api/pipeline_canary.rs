//! `spec.rollout.strategy: canary`: the new colour takes traffic in weighted steps before it takes
//! all of it, like Argo Rollouts' canary, on any cluster (the weight is the share of ready pods
//! behind Service `<name>`).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a new revision takes traffic.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum RolloutStrategy {
    /// The new colour starts beside the old one and takes all traffic at once.
    #[default]
    BlueGreen,
    /// The new colour takes traffic in the weighted steps of `rollout.canary`.
    Canary,
}

/// The steps of a canary rollout.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.analysis) || self.analysis.startingStep < size(self.steps)").message("canary.analysis.startingStep must name one of canary.steps (counted from 0)").field_path(".analysis.startingStep"),
    validation = Rule::new("!has(self.analysis) || self.steps.all(s, !has(s.analysis))").message("canary: run the analysis in the background (canary.analysis) or as steps, not both").field_path(".steps")
)]
pub struct CanarySpec {
    /// In order; after the last one the new colour is scaled to the full count and takes all
    /// traffic.
    #[schemars(length(min = 1, max = 20))]
    pub steps: Vec<CanaryStep>,
    /// The metrics of `rollout.analysis.canary`, run in the background from a step on until the
    /// rollout ends; a failure aborts the rollout at whatever step it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
}

/// One canary step: exactly one of its fields.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1").message("a canary step is exactly one of setWeight, pause or analysis"))]
pub struct CanaryStep {
    /// Percent of the pipeline's pods (and so of its traffic) that run the new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub set_weight: Option<i32>,
    /// Wait: `{}` until promoted (`kubectl ragops promote`), or `{durationSeconds: N}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<CanaryPause>,
    /// Run the metrics of `rollout.analysis.canary` now; the rollout goes on when they pass and
    /// is aborted when they fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<InlineAnalysis>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CanaryPause {
    /// Seconds to wait; absent, the rollout waits until it is promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub duration_seconds: Option<i32>,
}

/// An analysis step; it runs `rollout.analysis.canary`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct InlineAnalysis {}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    /// The step (counted from 0) at which the analysis starts.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub starting_step: i32,
}

/// What `steps` does, as the rollout reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    SetWeight(i32),
    /// Until promoted (`None`) or for this many seconds.
    Pause(Option<i32>),
    Analysis,
}

impl CanaryStep {
    pub fn step(&self) -> Step {
        match (self.set_weight, &self.pause) {
            (Some(w), _) => Step::SetWeight(w),
            (None, Some(p)) => Step::Pause(p.duration_seconds),
            (None, None) => Step::Analysis,
        }
    }
}

#[cfg(test)]
#[path = "pipeline_canary_tests.rs"]
mod tests;
