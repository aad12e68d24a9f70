//! The Grafana dashboards in `config/grafana/` query only what exists: every panel has a
//! Prometheus datasource and a PromQL target, and every metric an expression names is a recording
//! rule of the pipeline's PrometheusRule, a metric the runtime registers (read from
//! `rag_runtime::metric_names`, which `Metrics` is built from and checked against), or an operator
//! metric. The operator's registry is private and its labelled metrics render nothing before their
//! first sample, so the operator's names are listed here ([`OPERATOR_METRICS`]).
//!
//! The e2e suite evaluates every expression against a real Prometheus with the same readers
//! (`rag_operator::monitoring::dashboards`).

use std::path::{Path, PathBuf};

use rag_operator::api::AlertsSpec;
use rag_operator::monitoring::dashboards::{dashboards, expressions, for_evaluation, panels};
use rag_operator::monitoring::rules::{Target, groups};

/// The recording rules of a pipeline's PrometheusRule, as its renderer makes them.
fn recording_rules() -> Vec<String> {
    let target = Target {
        namespace: "ns",
        pipeline: "p",
        progress_deadline_seconds: 300,
    };
    groups(&target, &AlertsSpec::default())
        .into_iter()
        .flat_map(|g| g.rules)
        .filter_map(|r| r.record)
        .collect()
}

/// The operator's metrics (operator/src/metrics.rs); histograms in [`OPERATOR_HISTOGRAMS`].
const OPERATOR_METRICS: &[&str] = &[
    "ragops_reconciliations_total",
    "ragops_reconcile_errors_total",
    "ragops_rollouts_total",
    "ragops_event_publish_failures_total",
    "ragops_invalid_objects_total",
    "ragops_pipeline_ready_replicas",
    "ragops_pipeline_phase",
    "ragops_managed_objects",
];
const OPERATOR_HISTOGRAMS: &[&str] = &[
    "ragops_reconcile_duration_seconds",
    "ragops_cutover_duration_seconds",
];

/// Where the ragops metrics start; other identifiers (functions, `up`) are not checked.
const OURS: [&str; 2] = ["rag_", "ragops"];

fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/grafana")
}

/// The metric names an expression selects: identifiers outside strings, label matchers
/// (`{..}`), ranges (`[..]`) and grouping lists (`by (..)`, `on (..)`, ...), not `$variables`.
fn metric_names(expr: &str) -> Vec<String> {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let (mut names, mut i, mut skip_list) = (Vec::new(), 0, false);
    while i < chars.len() {
        let c = chars[i];
        let closing = match c {
            '"' | '\'' | '`' => Some(c),
            '{' => Some('}'),
            '[' => Some(']'),
            '(' if skip_list => Some(')'),
            _ => None,
        };
        if let Some(closing) = closing {
            i += chars[i + 1..]
                .iter()
                .position(|&d| d == closing)
                .map_or(chars.len(), |p| p + 2);
            skip_list = false;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            skip_list = GROUPING.contains(&word.as_str());
            if OURS.iter().any(|p| word.starts_with(p)) {
                names.push(word);
            }
            continue;
        }
        if !c.is_whitespace() {
            skip_list = false;
        }
        i += 1;
    }
    names
}

/// The series selector of a `label_values(<series>, <label>)` variable query (the label is not a
/// metric); other queries as they are.
fn series_of_label_values(query: &str) -> &str {
    query
        .strip_prefix("label_values(")
        .and_then(|rest| rest.rsplit_once(','))
        .map_or(query, |(series, _)| series)
}

/// A name a query may select: a recording rule, a registered metric, or a histogram's series.
fn known(name: &str) -> bool {
    let histograms = (rag_runtime::metric_names::HISTOGRAMS.iter()).chain(OPERATOR_HISTOGRAMS);
    let series = ["_bucket", "_sum", "_count"];
    recording_rules().iter().any(|r| r == name)
        || rag_runtime::metric_names::ALL.contains(&name)
        || OPERATOR_METRICS.contains(&name)
        || histograms
            .flat_map(|h| series.iter().map(move |s| format!("{h}{s}")))
            .any(|s| s == name)
}

#[test]
fn metric_names_are_found_outside_labels_ranges_and_groupings() {
    let expr = r#"sum by (ragops_io_color) (rate(rag_http_requests_total{ragops_io_pipeline="rag_x"}[5m])) / on (namespace) group_left ragops:requests:rate5m{job="$ragops_job"} * $objective"#;
    assert_eq!(
        metric_names(expr),
        ["rag_http_requests_total", "ragops:requests:rate5m"]
    );
    assert!(!known("rag_http_requests_totl"));
    assert!(known("rag_llm_duration_seconds_bucket"));
    assert!(!known("rag_llm_tokens_total_bucket"));
}

#[test]
fn every_panel_queries_prometheus_through_the_datasource_variable() {
    let dashboards = dashboards(&grafana_dir());
    let files: Vec<&str> = dashboards.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, ["rag-operator.json", "rag-runtime.json"]);
    for (file, dashboard) in &dashboards {
        assert!(
            dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 39,
            "{file}"
        );
        assert!(!panels(dashboard).is_empty(), "{file} has no panels");
        for panel in panels(dashboard) {
            let title = format!("{file}: {}", panel["title"]);
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
            let targets = panel["targets"].as_array().expect(&title);
            assert!(
                targets
                    .iter()
                    .any(|t| t["expr"].as_str().is_some_and(|e| !e.trim().is_empty())),
                "{title} has no expression"
            );
            for target in targets {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            }
        }
    }
}

#[test]
fn dashboards_select_by_datasource_namespace_and_pipeline() {
    for (file, dashboard) in dashboards(&grafana_dir()) {
        let variables = dashboard["templating"]["list"].as_array().expect(&file);
        let variable = |name: &str| {
            (variables.iter())
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{file} has no variable {name}"))
        };
        let datasource = variable("datasource");
        assert_eq!(
            (&datasource["type"], &datasource["query"]),
            (&"datasource".into(), &"prometheus".into()),
            "{file}"
        );
        for name in ["namespace", "pipeline"] {
            let query = variable(name)["query"]["query"]
                .as_str()
                .unwrap_or_default();
            assert!(query.starts_with("label_values("), "{file} {name}: {query}");
        }
    }
    let (_, runtime) = dashboards(&grafana_dir()).remove(1);
    let objective = (runtime["templating"]["list"].as_array().unwrap().iter())
        .find(|v| v["name"] == "objective")
        .expect("an objective constant");
    assert_eq!(
        (&objective["type"], &objective["query"]),
        (&"constant".into(), &"0.999".into())
    );
}

#[test]
fn every_metric_a_dashboard_names_exists() {
    let dir = grafana_dir();
    let mut queries = expressions(&dir);
    for (file, dashboard) in dashboards(&dir) {
        for v in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let query = v["query"]["query"].as_str().unwrap_or_default();
            let query = series_of_label_values(query).to_string();
            queries.push((file.clone(), format!("variable {}", v["name"]), query));
        }
    }
    let unknown: Vec<String> = (queries.iter())
        .flat_map(|(file, title, expr)| {
            metric_names(expr)
                .into_iter()
                .filter(|n| !known(n))
                .map(move |n| format!("{file} / {title}: {n}"))
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "unknown metrics:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_runtime_dashboard_uses_every_recording_rule() {
    let used: Vec<String> = (expressions(&grafana_dir()).iter())
        .filter(|(file, _, _)| file == "rag-runtime.json")
        .flat_map(|(_, _, expr)| metric_names(expr))
        .collect();
    let rules = recording_rules();
    assert!(rules.len() >= 10, "{rules:?}");
    for rule in &rules {
        assert!(used.iter().any(|u| u == rule), "{rule} is on no panel");
    }
}

#[test]
fn evaluation_leaves_no_grafana_variable() {
    for (file, title, expr) in expressions(&grafana_dir()) {
        let promql = for_evaluation(&expr, "ns", "handbook");
        assert!(!promql.contains('$'), "{file} / {title}: {promql}");
    }
}

#[test]
fn the_adapter_serves_the_pods_metrics_the_hpa_names_from_runtime_series() {
    let path = grafana_dir().join("../prometheus-adapter/rules.yaml");
    let text = std::fs::read_to_string(&path).expect("config/prometheus-adapter/rules.yaml");
    let config: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let rules = config["rules"].as_sequence().expect("a rules list");
    let mut served = Vec::new();
    for rule in rules {
        let series = rule["seriesQuery"].as_str().expect("seriesQuery");
        let query = rule["metricsQuery"].as_str().expect("metricsQuery");
        let names = metric_names(series);
        assert_eq!(names.len(), 1, "{series}");
        assert!(known(&names[0]), "{series}");
        for resource in ["namespace", "pod"] {
            assert_eq!(
                rule["resources"]["overrides"][resource]["resource"].as_str(),
                Some(resource),
                "{series}"
            );
        }
        assert!(query.contains("<<.LabelMatchers>>") && query.contains("<<.GroupBy>>"));
        served.push(rule["name"]["as"].as_str().expect("name.as").to_string());
    }
    assert_eq!(
        served,
        [
            "rag_http_requests_in_flight",
            "rag_http_request_p99_seconds"
        ]
    );
}
