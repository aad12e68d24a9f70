//! `RagPipeline.spec.rollout.analysis`: metrics measured on Prometheus that decide whether a new
//! revision may take traffic (`prePromotion`) and whether it may keep it (`postPromotion`).
//!
//! Shaped like Argo Rollouts' AnalysisTemplate metrics, with what its users still ask for done
//! from the start: a consecutive-failure limit beside the total one, early success, and an
//! explicit choice for an empty result. The API server checks what a schema can (limits, enums,
//! exactly one of `query`/`builtin`, unique names, stages naming defined metrics); the operator
//! compiles the conditions and query templates (`crate::analysis::compile`) and reports what
//! fails, naming the field.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most metrics one pipeline may define; also bounds the cost of the CEL rules below.
pub const MAX_ANALYSIS_METRICS: usize = 10;

/// Metric analysis around the cutover.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))").message("analysis.metrics: metric names must be unique").field_path(".metrics"),
    validation = Rule::new("!has(self.prePromotion) || self.prePromotion.metrics.all(n, self.metrics.exists(m, m.name == n))").message("analysis.prePromotion.metrics: every name must be one of analysis.metrics").field_path(".prePromotion.metrics"),
    validation = Rule::new("!has(self.postPromotion) || self.postPromotion.metrics.all(n, self.metrics.exists(m, m.name == n))").message("analysis.postPromotion.metrics: every name must be one of analysis.metrics").field_path(".postPromotion.metrics"),
    validation = Rule::new("!has(self.canary) || self.canary.metrics.all(n, self.metrics.exists(m, m.name == n))").message("analysis.canary.metrics: every name must be one of analysis.metrics").field_path(".canary.metrics"),
    validation = Rule::new("has(self.prePromotion) || has(self.postPromotion) || has(self.canary)").message("analysis: name the metrics to run in prePromotion, postPromotion or canary")
)]
pub struct AnalysisSpec {
    /// The Prometheus to query; the operator's `--prometheus-url` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// The metrics, each measured `count` times, `intervalSeconds` apart.
    #[schemars(length(min = 1, max = 10))]
    pub metrics: Vec<AnalysisMetric>,
    /// Metrics the new colour must pass after the health check and smoke queries, before the
    /// selector of Service `<name>` moves to it. They measure the traffic the new colour gets
    /// through Service `<name>-preview` (the smoke queries, or whatever load you send there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion: Option<AnalysisStageSpec>,
    /// Metrics the new colour must pass after it takes traffic; the old colour stays scaled up
    /// until they pass, and traffic goes back to it at once when they fail. The window ends when
    /// every metric has passed: at most the slowest metric's
    /// `initialDelaySeconds + (count - 1) × intervalSeconds`, sooner with early success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion: Option<AnalysisStageSpec>,
    /// Metrics a canary rollout runs at its `analysis` steps or in the background
    /// (`rollout.canary.analysis`), measuring the live traffic the new colour's share gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<AnalysisStageSpec>,
}

/// Where the metrics come from.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Base URL of the Prometheus HTTP API, for example `http://prometheus.monitoring:9090`.
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/\S*)?$"), length(max = 2048))]
    pub address: String,
}

/// The metrics one stage runs, by name.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStageSpec {
    /// Names from `analysis.metrics`; all must pass.
    #[schemars(length(min = 1, max = 10), inner(length(min = 1, max = 63)))]
    pub metrics: Vec<String>,
}

/// Metrics every pipeline has without writing PromQL, from the runtime's request metrics of the
/// revision and colour under analysis (answers only: probes and scrapes excluded).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum BuiltinMetric {
    /// Share of answers with a 5xx status, 0 to 1; empty when there was no traffic.
    ErrorRatio,
    /// 99th percentile of answer latency in seconds; empty when there was no traffic.
    #[serde(rename = "latencyP99")]
    LatencyP99,
}

/// What an empty query result (no series) counts as.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    /// Neither success nor failure; counted against `inconclusiveLimit`.
    #[default]
    Inconclusive,
    /// Success, for example "no errors recorded" for an error-count query.
    Success,
    /// Failure, for example when the series must exist.
    Failure,
}

/// One named measurement, repeated.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.query) != has(self.builtin)").message("analysis.metrics: give exactly one of query or builtin"),
    validation = Rule::new("!has(self.builtin) || has(self.threshold)").message("analysis.metrics: a builtin metric needs a threshold (success when result <= threshold)").field_path(".threshold"),
    validation = Rule::new("!has(self.builtin) || (!has(self.successCondition) && !has(self.failureCondition))").message("analysis.metrics: a builtin metric takes a threshold, not successCondition or failureCondition"),
    validation = Rule::new("!has(self.query) || has(self.successCondition)").message("analysis.metrics: a query needs a successCondition").field_path(".successCondition"),
    validation = Rule::new("!has(self.query) || !has(self.threshold)").message("analysis.metrics: threshold is for builtin metrics; write it into successCondition").field_path(".threshold")
)]
pub struct AnalysisMetric {
    /// Name, unique among the metrics; stages refer to it.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// A PromQL instant query whose result is a scalar or a one-element vector. The placeholders
    /// `{{namespace}}`, `{{pipeline}}`, `{{revision}}` and `{{color}}` are replaced (escaped for
    /// PromQL) and must stand inside a quoted string, for example
    /// `ragops_io_revision="{{revision}}"`. The runtime's series carry the target labels
    /// `namespace`, `ragops_io_pipeline`, `ragops_io_color` and `ragops_io_revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
    /// A built-in metric instead of a query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMetric>,
    /// For a builtin metric: success when `result <= threshold`, failure otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub threshold: Option<f64>,
    /// A CEL expression over the number `result` that is true for a successful measurement, for
    /// example `result >= 0.95`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub success_condition: Option<String>,
    /// A CEL expression over `result` that is true for a failed measurement. When given, a
    /// measurement meeting neither condition is inconclusive; when absent, every measurement
    /// that is not a success is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub failure_condition: Option<String>,
    /// What a result with no series counts as. A query Prometheus cannot answer (unreachable,
    /// an error, a non-scalar result) is always inconclusive, never a success.
    #[serde(default)]
    pub on_empty: OnEmpty,
    /// Seconds before the first measurement of a stage.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: i32,
    /// Seconds between measurements. Built-in metrics look back over this long, at least 60 s.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,
    /// Measurements to take; the metric passes when they are all taken within the limits.
    #[serde(default = "default_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub count: i32,
    /// Failed measurements tolerated in all; one more fails the metric.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub failure_limit: i32,
    /// Failed measurements in a row tolerated; one more fails the metric, whatever
    /// `failureLimit` allows. To ride out single flaky scrapes but not a streak, raise
    /// `failureLimit` and set this low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub consecutive_failure_limit: Option<i32>,
    /// Successful measurements in a row that pass the metric early, before `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub consecutive_success_limit: Option<i32>,
    /// Inconclusive measurements (no data, Prometheus unreachable) tolerated; one more makes the
    /// metric inconclusive, which never promotes.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub inconclusive_limit: i32,
}

fn default_interval() -> i32 {
    30
}

fn default_count() -> i32 {
    5
}

#[cfg(test)]
#[path = "pipeline_analysis_tests.rs"]
pub(super) mod tests;
