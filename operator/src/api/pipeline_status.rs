//! Observed state of a RagPipeline, including the bookkeeping that lets a restarted operator
//! resume a rollout exactly where it was.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The two Deployments of a pipeline; one serves, the other receives the next revision.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    pub fn other(self) -> Self {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Summary of where a pipeline stands.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing has been rolled out yet.
    #[default]
    Pending,
    /// A revision is being rolled out.
    Progressing,
    /// The new colour is verified and waits for the `ragops.io/promote` annotation.
    Paused,
    /// The active colour serves the desired revision.
    Healthy,
    /// A rollout failed or the spec cannot be served; see the Degraded condition.
    Degraded,
}

/// Observed state of a RagPipeline.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RagPipelineStatus {
    /// `Pending`, `Progressing`, `Paused`, `Healthy` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The colour Service `<name>` sends traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_color: Option<Color>,
    /// The revision the active colour runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_revision: Option<String>,
    /// The colour being rolled out, if a rollout is in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_color: Option<Color>,
    /// The revision being rolled out, if a rollout is in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// Ready pods of the active colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// In-cluster URL of the active Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When traffic last moved to a new colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cutover_time: Option<Time>,
    /// Progress of the rollout in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutProgress>,
    /// The last rollout that failed; it is not retried until the spec changes or
    /// `ragops.io/retry` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<RolloutFailure>,
    /// The previous colour, kept running until `at`, then scaled to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<PendingScaleDown>,
    /// The colour that served before the last cutover (what `ragops.io/rollback` brings back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_color: Option<Color>,
    /// The revision that served before the last cutover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_revision: Option<String>,
    /// A rollback in force: the spec's revision is set aside until the spec changes or
    /// `ragops.io/retry` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackState>,
    /// The metric analysis of the rollout in flight, or of the last one (pre- or post-promotion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::AnalysisRunStatus>,
    /// The id (annotation value) of the last request of each kind the operator acted on, recorded
    /// in the same write as the request's effect: a request whose id is recorded here is a repeat
    /// and is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_requests: Option<HandledRequests>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `MonitoringReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The golden-set run of the rollout in flight, or of the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_set: Option<super::GoldenSetStatus>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutProgress {
    /// When this revision's rollout started; the progress deadline counts from here.
    pub started_at: Time,
    /// Consecutive successful health probes of the new colour.
    #[serde(default)]
    pub health_successes: i32,
    /// Consecutive failed health probes of the new colour.
    #[serde(default)]
    pub health_failures: i32,
    /// Health check and smoke queries passed; the new colour may take traffic.
    #[serde(default)]
    pub verified: bool,
    /// When the new colour was last probed; probes are `healthCheck.periodSeconds` apart however
    /// often the pipeline is reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_at: Option<MicroTime>,
    /// Failed attempts of this first deploy before this one (it is retried automatically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_attempts: Option<i32>,
    /// Where a canary rollout stands in `rollout.canary.steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryProgress>,
}

/// The canary step in force and the weight it set.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CanaryProgress {
    /// Index of the step in force in `rollout.canary.steps`; their count once all have passed.
    pub step: i32,
    /// Percent of the pods the new colour runs (the last `setWeight` reached); 0 before the first.
    pub weight: i32,
    /// When the step in force began; a timed pause counts from here.
    pub step_started_at: Time,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutFailure {
    /// The revision that failed.
    pub revision: String,
    /// `ProgressDeadlineExceeded`, `HealthCheckFailed`, `SmokeQueryFailed` or `Aborted`.
    pub reason: String,
    /// What went wrong.
    pub message: String,
    /// Consecutive failed attempts of a first deploy (nothing served while they failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// When a failed first deploy is tried again by itself; a rollout that failed while an
    /// older revision serves waits for a spec change or `ragops.io/retry` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Time>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingScaleDown {
    pub color: Color,
    pub at: Time,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackState {
    /// The spec's revision that was rolled back.
    pub from: String,
    /// The revision serving instead.
    pub to: String,
}

/// Request ids (`ragops.io/<verb>` annotation values) already acted on, by verb.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HandledRequests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_promote: Option<String>,
}
