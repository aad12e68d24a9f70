//! `RagPipeline`: how questions are served over a RagIndex, and how changes roll out.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{RagPipelineStatus, RuntimeSpec, SecretKeyRef, ServerSpec};

/// A RAG service over a RagIndex, shipped by blue-green rollouts.
// Each printcolumn repeats `type_`; clippy mistakes that for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ragops.io",
    version = "v1alpha1",
    kind = "RagPipeline",
    namespaced,
    status = "RagPipelineStatus",
    shortname = "ragp",
    category = "rag",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Active", type_ = "string", json_path = ".status.activeColor"),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.activeRevision"
    ),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Index", type_ = "string", json_path = ".spec.indexRef.name"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    // Services `<name>-preview` and `<name>-metrics` are DNS-1035 labels of at most 63
    // characters, and the name is a label value of every child.
    validation = Rule::new("self.metadata.name.size() <= 55 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name: a RagPipeline name is at most 55 characters, lower case letters, digits and '-', starting with a letter (it names Services <name>-preview and <name>-metrics)")
)]
#[serde(rename_all = "camelCase")]
pub struct RagPipelineSpec {
    /// The RagIndex (same namespace) this pipeline answers from.
    pub index_ref: IndexRef,
    /// The runtime pods.
    #[serde(default)]
    pub runtime: RuntimeSpec,
    /// The model that writes answers.
    #[serde(default)]
    pub llm: LlmSpec,
    /// How many chunks are retrieved per question.
    #[serde(default)]
    pub retrieval: RetrievalSpec,
    /// Prompt overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptSpec>,
    /// How the runtime serves HTTP: API keys, rate limit, timeouts, body size. The runtime's
    /// defaults (no auth, no rate limit) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,
    /// Horizontal autoscaling of the active colour; fixed `runtime.replicas` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// ServiceMonitor and PrometheusRule (only where the Prometheus Operator CRDs exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<super::MonitoringSpec>,
    /// How a change is rolled out.
    #[serde(default)]
    pub rollout: RolloutSpec,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
pub struct IndexRef {
    /// Name of the RagIndex.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Who writes the answer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    /// Any OpenAI-compatible chat completions server.
    Openai,
    /// Answer with the retrieved passages; no model, no network.
    #[default]
    Extractive,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'openai' || has(self.model)").message("llm.model is required when provider is openai"))]
pub struct LlmSpec {
    /// `openai` (any OpenAI-compatible server) or `extractive`.
    #[serde(default)]
    pub provider: LlmProvider,
    /// Model name, for example `gpt-4o-mini`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Base URL of the OpenAI-compatible API (ending in `/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret key holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Upper bound of tokens in an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<i32>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrievalSpec {
    /// Chunks retrieved per question.
    #[serde(default = "default_top_k")]
    #[schemars(range(min = 1, max = 100))]
    pub top_k: i32,
    /// Chunks scoring below this are not used; scores run from 0 to 1 in both retrieval modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub score_threshold: Option<f64>,
}

impl Default for RetrievalSpec {
    fn default() -> Self {
        Self {
            top_k: default_top_k(),
            score_threshold: None,
        }
    }
}

fn default_top_k() -> i32 {
    5
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
pub struct PromptSpec {
    /// System message sent to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// User message template; `{context}` and `{question}` are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas").field_path(".minReplicas"))]
pub struct AutoscalingSpec {
    /// Fewest pods of the active colour.
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Most pods of the active colour.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of requests) to aim for; 80 when no other target is set.
    // Kubernetes API conventions keep acronyms in capitals.
    #[serde(
        default,
        rename = "targetCPUUtilization",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization: Option<i32>,
    /// Average memory utilisation (percent of requests) to aim for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_utilization: Option<i32>,
    /// Average in-flight requests per pod to aim for (a Pods metric served by prometheus-adapter,
    /// see `config/prometheus-adapter/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_in_flight_requests: Option<i32>,
    /// Average per-pod 99th percentile answer latency to aim for, in seconds (a Pods metric
    /// served by prometheus-adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub target_p99_latency_seconds: Option<f64>,
    /// How fast the HPA may scale; the defaults react at once to load and shed pods slowly.
    #[serde(default)]
    pub behavior: ScalingBehavior,
}

/// Limits on how fast the HPA changes the replica count.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingBehavior {
    /// Seconds of recommendations the HPA takes the highest of before scaling up.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_up_stabilization_seconds: i32,
    /// Seconds of recommendations the HPA takes the highest of before scaling down.
    #[serde(default = "default_scale_down_stabilization")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: i32,
    /// Most pods added per minute, as a percentage of the current count (at least 4 pods).
    #[serde(default = "default_scale_up_percent")]
    #[schemars(range(min = 1, max = 1000))]
    pub scale_up_percent_per_minute: i32,
    /// Most pods removed per minute, as a percentage of the current count.
    #[serde(default = "default_scale_down_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub scale_down_percent_per_minute: i32,
}

impl Default for ScalingBehavior {
    fn default() -> Self {
        Self {
            scale_up_stabilization_seconds: 0,
            scale_down_stabilization_seconds: default_scale_down_stabilization(),
            scale_up_percent_per_minute: default_scale_up_percent(),
            scale_down_percent_per_minute: default_scale_down_percent(),
        }
    }
}

fn default_scale_down_stabilization() -> i32 {
    300
}

fn default_scale_up_percent() -> i32 {
    100
}

fn default_scale_down_percent() -> i32 {
    50
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.strategy) || self.strategy != 'canary' || has(self.canary)").message("rollout.canary is required when rollout.strategy is canary").field_path(".canary"),
    validation = Rule::new("!has(self.canary) || !(has(self.canary.analysis) || self.canary.steps.exists(s, has(s.analysis))) || (has(self.analysis) && has(self.analysis.canary))").message("rollout.canary runs analysis: name its metrics in rollout.analysis.canary").field_path(".analysis")
)]
pub struct RolloutSpec {
    /// Switch traffic as soon as the new colour is healthy; when false, wait for the
    /// `ragops.io/promote` annotation.
    #[serde(default = "default_true")]
    pub auto_promote: bool,
    /// The HTTP check every new pod must pass before promotion.
    #[serde(default)]
    pub health_check: HealthCheckSpec,
    /// Golden questions the new colour must answer before promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke_queries: Vec<SmokeQuery>,
    /// A rollout not promoted within this many seconds fails; the old colour keeps traffic.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 10))]
    pub progress_deadline_seconds: i32,
    /// Seconds the old colour keeps running after a cutover, for in-flight requests and rollback.
    #[serde(default = "default_scale_down_delay")]
    #[schemars(range(min = 0))]
    pub scale_down_delay_seconds: i32,
    /// Prometheus metrics the new colour must pass before it takes traffic, after it, or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<super::AnalysisSpec>,
    /// Queries with the documents each should find, run against the new and the active colour
    /// before traffic moves: a re-index or retrieval change that makes answers worse fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_set: Option<super::GoldenSetSpec>,
    /// `blueGreen` (the default: all traffic moves at once) or `canary` (in the weighted steps of
    /// `canary`).
    #[serde(default)]
    pub strategy: super::RolloutStrategy,
    /// The steps of a canary rollout; required with `strategy: canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::CanarySpec>,
}

impl RolloutSpec {
    /// The canary steps, when the strategy is `canary`.
    pub fn canary(&self) -> Option<&super::CanarySpec> {
        self.canary
            .as_ref()
            .filter(|_| self.strategy == super::RolloutStrategy::Canary)
    }
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            auto_promote: true,
            health_check: HealthCheckSpec::default(),
            smoke_queries: vec![],
            progress_deadline_seconds: default_progress_deadline(),
            scale_down_delay_seconds: default_scale_down_delay(),
            analysis: None,
            golden_set: None,
            strategy: super::RolloutStrategy::BlueGreen,
            canary: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_progress_deadline() -> i32 {
    600
}

fn default_scale_down_delay() -> i32 {
    30
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// HTTP path probed on every new pod.
    #[serde(default = "default_health_path")]
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// Seconds between probes.
    #[serde(default = "default_period")]
    #[schemars(range(min = 1, max = 300))]
    pub period_seconds: i32,
    /// Consecutive successful probes needed.
    #[serde(default = "default_success_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub success_threshold: i32,
    /// Consecutive failed probes that fail the rollout.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: i32,
    /// Seconds one probe may take.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            period_seconds: default_period(),
            success_threshold: default_success_threshold(),
            failure_threshold: default_failure_threshold(),
            timeout_seconds: default_timeout(),
        }
    }
}

fn default_health_path() -> String {
    "/readyz".into()
}

fn default_period() -> i32 {
    2
}

fn default_success_threshold() -> i32 {
    3
}

fn default_failure_threshold() -> i32 {
    3
}

fn default_timeout() -> i32 {
    2
}

/// A golden question for the retrieval-quality gate.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SmokeQuery {
    /// The question.
    #[schemars(length(min = 1))]
    pub query: String,
    /// Document ids that must be among the top K sources.
    #[serde(
        default,
        rename = "expectSourceIDs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expect_source_ids: Vec<String>,
    /// The best source must score at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
}
