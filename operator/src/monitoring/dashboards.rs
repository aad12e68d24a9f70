//! Readers of the Grafana dashboards in `config/grafana/`: every panel and every PromQL
//! expression, and an expression with Grafana's variables replaced so Prometheus can evaluate it.
//! The operator's tests check the names the expressions use; the e2e suite evaluates them.

use std::path::Path;

use serde_json::Value;

/// Every dashboard under `dir`, by file name.
pub fn dashboards(dir: &Path) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// Every PromQL expression of the dashboards under `dir`: (file, panel title, expression).
pub fn expressions(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, dashboard) in dashboards(dir) {
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                out.push((file.clone(), title.clone(), expr.to_string()));
            }
        }
    }
    out
}

/// An expression as Prometheus can evaluate it: Grafana's variables replaced by values.
pub fn for_evaluation(expr: &str, namespace: &str, pipeline: &str) -> String {
    [
        ("$__rate_interval", "1m"),
        ("$__interval", "30s"),
        ("$__range", "1h"),
        ("$namespace", namespace),
        ("$pipeline", pipeline),
        ("$objective", "0.999"),
    ]
    .iter()
    .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}
