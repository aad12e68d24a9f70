//! The built-in metrics as query templates, written against the runtime's real series: the
//! metric names come from `rag_runtime::metric_names`, the labels from the ServiceMonitor's target
//! labels (`namespace`, and `ragops_io_pipeline`, `ragops_io_color`, `ragops_io_revision` from
//! the pod labels). They go through the same templating as a user's query.

use rag_runtime::metric_names::{HTTP_REQUEST_DURATION, HTTP_REQUESTS};

use crate::api::BuiltinMetric;

/// The series of the revision and colour under analysis.
const SELECTOR: &str = r#"namespace="{{namespace}}",ragops_io_pipeline="{{pipeline}}",ragops_io_revision="{{revision}}",ragops_io_color="{{color}}""#;

/// Requests that are answers. Named positively: probes (`/readyz/store` among them), scrapes and
/// document writes say nothing about the answers users get.
const ANSWERS: &str = r#"route=~"/v1/query|/v1/chat/completions""#;

/// The shortest look-back: `rate` needs two scrapes in its window, and the ServiceMonitor's
/// default interval is 30 s.
const MIN_WINDOW_SECONDS: i32 = 60;

/// The query template of a built-in metric measured every `interval_seconds`.
///
/// Both are empty, not NaN, when the revision had no answers in the window, so `onEmpty` decides
/// what no traffic means: `errorRatio` divides by the request rate only where it is above zero
/// (and counts no 5xx series as zero errors), `latencyP99` drops the NaN `histogram_quantile`
/// gives for empty buckets (`>= 0` is false for NaN; `+Inf` is kept, and fails any threshold).
pub fn query(metric: BuiltinMetric, interval_seconds: i32) -> String {
    let window = format!("{}s", interval_seconds.max(MIN_WINDOW_SECONDS));
    match metric {
        BuiltinMetric::ErrorRatio => format!(
            "(sum(rate({HTTP_REQUESTS}{{{SELECTOR},{ANSWERS},code=~\"5..\"}}[{window}])) or vector(0))\n\
             /\n\
             (sum(rate({HTTP_REQUESTS}{{{SELECTOR},{ANSWERS}}}[{window}])) > 0)"
        ),
        BuiltinMetric::LatencyP99 => format!(
            "histogram_quantile(0.99, sum by (le) (rate({HTTP_REQUEST_DURATION}_bucket{{{SELECTOR},{ANSWERS}}}[{window}])))\n\
             >= 0"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::template::{Template, Vars};
    use crate::api::Color;

    #[test]
    fn built_in_queries_select_the_revision_and_colour_of_the_run() {
        let vars = Vars {
            namespace: "team-a",
            pipeline: "docs",
            revision: "abc123",
            color: Color::Green,
        };
        let render = |m, interval| {
            Template::parse(&query(m, interval))
                .unwrap()
                .render(&vars)
                .unwrap()
        };
        let selector = r#"namespace="team-a",ragops_io_pipeline="docs",ragops_io_revision="abc123",ragops_io_color="green",route=~"/v1/query|/v1/chat/completions""#;
        assert_eq!(
            render(BuiltinMetric::ErrorRatio, 30),
            format!(
                "(sum(rate(rag_http_requests_total{{{selector},code=~\"5..\"}}[60s])) or vector(0))\n/\n\
                 (sum(rate(rag_http_requests_total{{{selector}}}[60s])) > 0)"
            )
        );
        assert_eq!(
            render(BuiltinMetric::LatencyP99, 120),
            format!(
                "histogram_quantile(0.99, sum by (le) (rate(rag_http_request_duration_seconds_bucket{{{selector}}}[120s])))\n>= 0"
            )
        );
    }

    #[test]
    fn the_labels_are_the_service_monitors_target_labels() {
        use crate::pipeline::build::{COLOR_LABEL, PIPELINE_LABEL, REVISION_LABEL};
        // Prometheus turns `ragops.io/color` into `ragops_io_color`.
        for label in [PIPELINE_LABEL, COLOR_LABEL, REVISION_LABEL] {
            let target = label.replace(['.', '/'], "_");
            assert!(SELECTOR.contains(&format!("{target}=")), "{target}");
        }
    }
}
