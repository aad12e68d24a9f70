//! The PrometheusRule of a pipeline, rendered from its alert thresholds: recording rules that
//! aggregate the runtime's series per pipeline, then alerts over those (and over the
//! operator's own per-pipeline metrics). Pure: namespace, name and thresholds in, rule groups
//! out; the README's Monitoring table and the promtool tests are made from the same function.

use std::collections::BTreeMap;

use super::crd::{Rule, RuleGroup};
use crate::api::AlertsSpec;

/// Requests that are answers (not probes or scrapes).
const ANSWERS: &str = r#"route!~"/healthz|/readyz|/metrics""#;
/// Per-pipeline aggregation of runtime series.
const BY: &str = "namespace, ragops_io_pipeline";
/// Burn-rate factors of the multi-window alerts (Google SRE workbook): 2 % of a 30-day budget
/// in 1 h, 5 % in 6 h.
const FAST_BURN: f64 = 14.4;
const SLOW_BURN: f64 = 6.0;

/// Which pipeline the rules are for.
pub struct Target<'a> {
    pub namespace: &'a str,
    pub pipeline: &'a str,
    /// `rollout.progressDeadlineSeconds`: a rollout Progressing longer is stuck.
    pub progress_deadline_seconds: i32,
}

impl Target<'_> {
    /// Label matchers of the pipeline's runtime series.
    fn runtime(&self) -> String {
        format!(
            r#"namespace="{}",ragops_io_pipeline="{}""#,
            self.namespace, self.pipeline
        )
    }

    /// Label matchers of the operator's series about the pipeline.
    fn operator(&self) -> String {
        format!(
            r#"namespace="{}",pipeline="{}""#,
            self.namespace, self.pipeline
        )
    }
}

/// Both groups: recording rules first, alerts over them.
pub fn groups(t: &Target, spec: &AlertsSpec) -> Vec<RuleGroup> {
    let prefix = format!("ragops.{}.{}", t.namespace, t.pipeline);
    vec![
        RuleGroup {
            name: format!("{prefix}.recording"),
            interval: None,
            rules: recording(t, spec),
        },
        RuleGroup {
            name: format!("{prefix}.alerts"),
            interval: None,
            rules: alerts(t, spec),
        },
    ]
}

fn record(name: &str, expr: String) -> Rule {
    Rule {
        record: Some(name.into()),
        expr,
        ..Rule::default()
    }
}

fn recording(t: &Target, spec: &AlertsSpec) -> Vec<Rule> {
    let sel = t.runtime();
    let requests = |extra: &str, window: &str| {
        format!("sum by ({BY}) (rate(rag_http_requests_total{{{sel},{ANSWERS}{extra}}}[{window}]))")
    };
    let quantile = |q: &str, metric: &str, answers: bool| {
        let filter = if answers {
            format!("{sel},{ANSWERS}")
        } else {
            sel.clone()
        };
        format!(
            "histogram_quantile({q}, sum by ({BY}, le) (rate({metric}_bucket{{{filter}}}[5m])))"
        )
    };
    let prices = &spec.token_prices;
    let mut rules = vec![
        record("ragops:requests:rate5m", requests("", "5m")),
        record(
            "ragops:requests_by_color:rate5m",
            format!(
                "sum by ({BY}, ragops_io_color) (rate(rag_http_requests_total{{{sel},{ANSWERS}}}[5m]))"
            ),
        ),
    ];
    for window in ["5m", "30m", "1h", "6h"] {
        rules.push(record(
            &format!("ragops:errors:ratio_rate{window}"),
            format!(
                "{}\n/\n{}",
                requests(r#",code=~"5..""#, window),
                requests("", window)
            ),
        ));
    }
    rules.extend([
        record("ragops:latency_seconds:p95_5m", quantile("0.95", "rag_http_request_duration_seconds", true)),
        record("ragops:latency_seconds:p99_5m", quantile("0.99", "rag_http_request_duration_seconds", true)),
        record("ragops:llm_latency_seconds:p95_5m", quantile("0.95", "rag_llm_duration_seconds", false)),
        record(
            "ragops:llm_tokens:increase1h",
            format!("sum by ({BY}, kind) (increase(rag_llm_tokens_total{{{sel}}}[1h]))"),
        ),
        record(
            "ragops:llm_cost_dollars:increase1h",
            format!(
                "sum by ({BY}) (\n  ragops:llm_tokens:increase1h{{{sel},kind=\"prompt\"}} * {}\n  or\n  ragops:llm_tokens:increase1h{{{sel},kind=\"completion\"}} * {}\n)",
                num(prices.prompt_per1k / 1000.0),
                num(prices.completion_per1k / 1000.0)
            ),
        ),
        record(
            "ragops:rate_limited:rate5m",
            format!(r#"sum by ({BY}) (rate(rag_http_requests_total{{{sel},code="429"}}[5m]))"#),
        ),
    ]);
    rules
}

/// One alert before it is dressed with labels and annotations.
struct Alert {
    name: &'static str,
    severity: &'static str,
    expr: String,
    for_: String,
    /// What it means, with the threshold (also the README's text).
    summary: String,
}

fn alerts(t: &Target, spec: &AlertsSpec) -> Vec<Rule> {
    catalogue(t, spec)
        .into_iter()
        .map(|a| dress(t, spec, a))
        .collect()
}

// One alert per line: a table reads better than rustfmt's expansion of it.
#[rustfmt::skip]
fn catalogue(t: &Target, s: &AlertsSpec) -> Vec<Alert> {
    let sel = t.runtime();
    let op = t.operator();
    let alert = |name, severity, expr: String, for_: &str, summary: String| Alert {
        name,
        severity,
        expr,
        for_: for_.into(),
        summary,
    };
    let budget = 1.0 - s.availability_objective;
    let burn = |factor: f64, long: &str, short: &str| {
        let limit = num(factor * budget);
        format!("ragops:errors:ratio_rate{long}{{{sel}}} > {limit}\nand\nragops:errors:ratio_rate{short}{{{sel}}} > {limit}")
    };
    let deadline = duration(t.progress_deadline_seconds + 60);
    let errors_for = duration(s.error_ratio_for_seconds);
    vec![
        alert("RagPipelineErrorRatioCritical", "critical", format!("ragops:errors:ratio_rate5m{{{sel}}} > {}", num(s.error_ratio)), &errors_for, format!("more than {} of answers are 5xx errors", pct(s.error_ratio))),
        alert("RagPipelineErrorRatioWarning", "warning", format!("ragops:errors:ratio_rate5m{{{sel}}} > {}", num(s.error_ratio_warning)), &errors_for, format!("more than {} of answers are 5xx errors", pct(s.error_ratio_warning))),
        alert("RagPipelineLatencyP95High", "warning", format!("ragops:latency_seconds:p95_5m{{{sel}}} > {}", num(s.p95_latency_seconds)), "10m", format!("95th percentile answer latency above {}s", num(s.p95_latency_seconds))),
        alert("RagPipelineLatencyP99High", "warning", format!("ragops:latency_seconds:p99_5m{{{sel}}} > {}", num(s.p99_latency_seconds)), "10m", format!("99th percentile answer latency above {}s", num(s.p99_latency_seconds))),
        alert("RagPipelineLLMLatencyHigh", "warning", format!("ragops:llm_latency_seconds:p95_5m{{{sel}}} > {}", num(s.llm_p95_latency_seconds)), "10m", format!("95th percentile model answer time above {}s", num(s.llm_p95_latency_seconds))),
        alert("RagPipelineTokenBudgetExceeded", "warning", format!("sum by ({BY}) (ragops:llm_tokens:increase1h{{{sel}}}) > {}", num(s.tokens_per_hour)), "5m", format!("more than {} LLM tokens in the last hour", num(s.tokens_per_hour))),
        alert("RagPipelineCostHigh", "warning", format!("ragops:llm_cost_dollars:increase1h{{{sel}}} > {}", num(s.cost_per_hour)), "5m", format!("estimated LLM cost above {} per hour", num(s.cost_per_hour))),
        alert("RagPipelineRateLimited", "warning", format!("ragops:rate_limited:rate5m{{{sel}}} > {}", num(s.rate_limited_per_second)), "10m", format!("more than {} answers per second refused by the rate limit", num(s.rate_limited_per_second))),
        alert("RagPipelineIngestFailures", "warning", format!("sum by ({BY}) (increase(rag_ingest_failures_total{{{sel}}}[15m])) > 0"), "0s", "documents failed to ingest in the last 15 minutes".into()),
        alert("RagPipelineEmbedderErrors", "warning", format!("sum by ({BY}) (rate(rag_embedding_errors_total{{{sel}}}[5m])) > 0"), "5m", "calls to the embedding model fail".into()),
        alert("RagPipelineVectorStoreUnreachable", "critical", format!("sum by ({BY}) (rate(rag_vector_store_errors_total{{{sel}}}[5m])) > 0"), "5m", "calls to the vector store fail".into()),
        alert("RagPipelineNoReadyReplicas", "critical", format!("ragops_pipeline_ready_replicas{{{op}}} == 0\nunless on (namespace, pipeline)\nragops_pipeline_phase{{{op},phase=\"Pending\"}} == 1"), "2m", "the active colour has no ready replica".into()),
        alert("RagPipelineRolloutStuck", "warning", format!("ragops_pipeline_phase{{{op},phase=\"Progressing\"}} == 1"), &deadline, "a rollout has been Progressing past its progress deadline".into()),
        alert("RagPipelineRolloutFailed", "warning", format!("ragops_pipeline_phase{{{op},phase=\"Degraded\"}} == 1"), "1m", "the latest rollout failed; the old colour keeps traffic".into()),
        alert("RagPipelineErrorBudgetBurnFast", "critical", burn(FAST_BURN, "1h", "5m"), "2m", format!("the {} availability error budget burns {FAST_BURN}x too fast (1h and 5m)", pct(s.availability_objective))),
        alert("RagPipelineErrorBudgetBurnSlow", "warning", burn(SLOW_BURN, "6h", "30m"), "15m", format!("the {} availability error budget burns {SLOW_BURN}x too fast (6h and 30m)", pct(s.availability_objective))),
    ]
}

fn dress(t: &Target, spec: &AlertsSpec, a: Alert) -> Rule {
    let who = format!("RagPipeline {}/{}", t.namespace, t.pipeline);
    let description = format!(
        "{who} in namespace {}: {}. Thresholds are fields of spec.monitoring.alerts.",
        t.namespace, a.summary
    );
    Rule {
        alert: Some(a.name.into()),
        expr: a.expr,
        for_: Some(a.for_),
        labels: BTreeMap::from([("severity".into(), a.severity.into())]),
        annotations: BTreeMap::from([
            ("summary".into(), format!("{who}: {}", a.summary)),
            ("description".into(), description),
            (
                "runbook_url".into(),
                format!("{}{}", spec.runbook_base_url, a.name),
            ),
        ]),
        ..Rule::default()
    }
}

/// The alerts as the README lists them: name, severity, `for`, what fires it (defaults).
pub fn table(spec: &AlertsSpec) -> Vec<[String; 4]> {
    let t = Target {
        namespace: "NS",
        pipeline: "NAME",
        progress_deadline_seconds: 300,
    };
    catalogue(&t, spec)
        .into_iter()
        .map(|a| [a.name.into(), a.severity.into(), a.for_, a.summary])
        .collect()
}

/// Seconds as a Prometheus duration: `5m` when whole minutes, else `45s`.
fn duration(seconds: i32) -> String {
    let seconds = seconds.max(0);
    if seconds % 60 == 0 && seconds > 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// A threshold as PromQL and people read it: no float noise (0.0144, not 0.014400000000000001).
fn num(x: f64) -> String {
    let s = format!("{x:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

fn pct(x: f64) -> String {
    format!("{}%", num(x * 100.0))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
