//! `RagPipeline.spec.monitoring`: a ServiceMonitor for the runtime's metrics and a
//! PrometheusRule with the recording rules and alerts RAG teams ask for. Every threshold has its
//! default here, in the schema, so `kubectl explain` and the README tell the same numbers.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// A ServiceMonitor for the runtime's /metrics, both colours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSpec>,
    /// A PrometheusRule with the pipeline's recording rules and alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsSpec>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Scrape interval, for example `30s`.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: String,
    /// Labels the Prometheus instance selects ServiceMonitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Alert thresholds; each alert is documented in the README's Monitoring section.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.errorRatioWarning <= self.errorRatio").message("alerts.errorRatioWarning must not exceed alerts.errorRatio"))]
pub struct AlertsSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Labels the Prometheus instance selects PrometheusRules by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Share of 5xx answers (over 5 minutes) that pages: severity critical.
    #[serde(default = "default_error_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_ratio: f64,
    /// How long the error ratio must stay above a threshold before its alert fires.
    #[serde(default = "default_error_ratio_for")]
    #[schemars(range(min = 0, max = 86400))]
    pub error_ratio_for_seconds: i32,
    /// Share of 5xx answers (over 5 minutes) that warns.
    #[serde(default = "default_error_ratio_warning")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_ratio_warning: f64,
    /// 95th percentile of answer latency that warns.
    #[serde(default = "default_p95")]
    #[schemars(range(min = 0.0))]
    pub p95_latency_seconds: f64,
    /// 99th percentile of answer latency that warns.
    #[serde(default = "default_p99")]
    #[schemars(range(min = 0.0))]
    pub p99_latency_seconds: f64,
    /// 95th percentile of the model's answer time that warns.
    #[serde(default = "default_llm_p95")]
    #[schemars(range(min = 0.0))]
    pub llm_p95_latency_seconds: f64,
    /// LLM tokens (prompt and completion) per hour that warn.
    #[serde(default = "default_tokens_per_hour")]
    #[schemars(range(min = 0.0))]
    pub tokens_per_hour: f64,
    /// Estimated LLM cost per hour (in the currency of `tokenPrices`) that warns.
    #[serde(default = "default_cost_per_hour")]
    #[schemars(range(min = 0.0))]
    pub cost_per_hour: f64,
    /// Prices per 1,000 tokens, for the estimated cost.
    #[serde(default)]
    pub token_prices: TokenPrices,
    /// Answers refused by the rate limit (429) per second that warn.
    #[serde(default = "default_rate_limited")]
    #[schemars(range(min = 0.0))]
    pub rate_limited_per_second: f64,
    /// Availability objective (share of non-5xx answers over 30 days); the burn-rate alerts
    /// fire when the error budget burns 14.4 (fast) or 6 (slow) times too quickly.
    #[serde(default = "default_objective")]
    #[schemars(range(min = 0.5, max = 0.99999))]
    pub availability_objective: f64,
    /// Base of every alert's `runbook_url`, a placeholder to point at your runbooks (the alert
    /// name is appended).
    #[serde(default = "default_runbook")]
    #[serde(rename = "runbookBaseURL")]
    pub runbook_base_url: String,
}

/// Prices per 1,000 tokens (for example US dollars).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenPrices {
    #[serde(default = "default_prompt_price")]
    #[schemars(range(min = 0.0))]
    pub prompt_per1k: f64,
    #[serde(default = "default_completion_price")]
    #[schemars(range(min = 0.0))]
    pub completion_per1k: f64,
}

impl Default for TokenPrices {
    fn default() -> Self {
        Self {
            prompt_per1k: default_prompt_price(),
            completion_per1k: default_completion_price(),
        }
    }
}

impl Default for AlertsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            labels: BTreeMap::new(),
            error_ratio: default_error_ratio(),
            error_ratio_warning: default_error_ratio_warning(),
            error_ratio_for_seconds: default_error_ratio_for(),
            p95_latency_seconds: default_p95(),
            p99_latency_seconds: default_p99(),
            llm_p95_latency_seconds: default_llm_p95(),
            tokens_per_hour: default_tokens_per_hour(),
            cost_per_hour: default_cost_per_hour(),
            token_prices: TokenPrices::default(),
            rate_limited_per_second: default_rate_limited(),
            availability_objective: default_objective(),
            runbook_base_url: default_runbook(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_interval() -> String {
    "30s".into()
}

fn default_error_ratio() -> f64 {
    0.05
}

fn default_error_ratio_for() -> i32 {
    300
}

fn default_error_ratio_warning() -> f64 {
    0.01
}

fn default_p95() -> f64 {
    2.0
}

fn default_p99() -> f64 {
    5.0
}

fn default_llm_p95() -> f64 {
    10.0
}

fn default_tokens_per_hour() -> f64 {
    1_000_000.0
}

fn default_cost_per_hour() -> f64 {
    10.0
}

fn default_prompt_price() -> f64 {
    0.00015
}

fn default_completion_price() -> f64 {
    0.0006
}

fn default_rate_limited() -> f64 {
    1.0
}

fn default_objective() -> f64 {
    0.999
}

fn default_runbook() -> String {
    "https://runbooks.example.com/ragops/".into()
}
