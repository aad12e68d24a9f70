//! The operator's own Prometheus metrics, served on `/metrics`.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub reconciliations: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
    pub rollouts: IntCounterVec,
    /// Events the API server did not take (they never fail a reconciliation).
    pub event_failures: IntCounter,
    /// Objects of the operator's kinds that did not deserialize and were skipped.
    pub invalid_objects: IntCounterVec,
    /// From the start of a rollout to its promotion.
    pub rollout_duration: Histogram,
    /// From the probe that passed the gate to the selector patch.
    pub cutover_duration: Histogram,
    /// Requests of a reconciliation that got no answer within `--api-timeout-seconds`, by kind.
    pub api_timeouts: IntCounterVec,
    /// Analysis measurements taken, by pipeline, metric and outcome.
    pub analysis_measurements: IntCounterVec,
    /// recall@K of the last golden-set run, by pipeline and colour.
    pub golden_recall: GaugeVec,
    /// MRR of the last golden-set run, by pipeline and colour.
    pub golden_mrr: GaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let reconciliations = IntCounterVec::new(
            Opts::new(
                "ragops_reconciliations_total",
                "Reconciliations by kind and result",
            ),
            &["kind", "result"],
        )
        .expect("valid metric");
        let failures = IntCounterVec::new(
            Opts::new(
                "ragops_reconcile_errors_total",
                "Failed reconciliations by kind and error category",
            ),
            &["kind", "category"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ragops_reconcile_duration_seconds",
                "Duration of reconciliations",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let rollouts = IntCounterVec::new(
            Opts::new(
                "ragops_rollouts_total",
                "Finished blue-green rollouts by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let event_failures = IntCounter::new(
            "ragops_event_publish_failures_total",
            "Events that could not be published",
        )
        .expect("valid metric");
        let invalid_objects = IntCounterVec::new(
            Opts::new(
                "ragops_invalid_objects_total",
                "Objects that did not deserialize and were skipped, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let api_timeouts = IntCounterVec::new(
            Opts::new(
                "ragops_api_timeouts_total",
                "Requests to the Kubernetes API that got no answer within the timeout, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let analysis_measurements = IntCounterVec::new(
            Opts::new(
                "ragops_analysis_measurements_total",
                "Analysis measurements taken, by pipeline, metric and outcome",
            ),
            &["pipeline", "namespace", "metric", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(event_failures.clone()))
            .expect("unique metric");
        for c in [
            &reconciliations,
            &failures,
            &rollouts,
            &invalid_objects,
            &api_timeouts,
            &analysis_measurements,
        ] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(duration.clone()))
            .expect("unique metric");
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let rollout_duration = seconds(
            "ragops_rollout_duration_seconds",
            "From the start of a blue-green rollout to its promotion",
            vec![5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
        );
        let cutover_duration = seconds(
            "ragops_cutover_duration_seconds",
            "From the probe that passed the promotion gate to the patch of the Service selector",
            vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        );
        let gauge = |name: &str, help: &str| {
            let g = GaugeVec::new(Opts::new(name, help), &["namespace", "pipeline", "color"])
                .expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let golden_recall = gauge(
            "ragops_golden_set_recall_at_k",
            "recall@K of the last golden-set run, by pipeline and colour",
        );
        let golden_mrr = gauge(
            "ragops_golden_set_mrr",
            "Mean reciprocal rank of the last golden-set run, by pipeline and colour",
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            rollouts,
            event_failures,
            invalid_objects,
            rollout_duration,
            cutover_duration,
            api_timeouts,
            analysis_measurements,
            golden_recall,
            golden_mrr,
        }
    }
}

impl Metrics {
    /// Adds a collector read at scrape time (gauges computed from the caches).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        self.registry.register(collector).expect("unique metric");
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = vec![];
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::default();
        m.reconciliations
            .with_label_values(&["RagPipeline", "ok"])
            .inc();
        m.rollouts.with_label_values(&["promoted"]).inc_by(2);
        let text = m.render();
        assert!(
            text.contains(r#"ragops_reconciliations_total{kind="RagPipeline",result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ragops_rollouts_total{outcome="promoted"} 2"#),
            "{text}"
        );
    }
}
