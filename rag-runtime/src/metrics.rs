//! Prometheus metrics of one runtime: HTTP traffic by route and code, the latency of each stage
//! of a question (retrieval, embedding, LLM), tokens spent, what ingest stored or failed on, and
//! the embedder and vector-store calls that failed. Names live in [`crate::metric_names`].
//! Each [`Metrics`] owns its registry, so tests and benchmarks never share counters.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::metric_names as name;

/// Buckets from 100 µs to 60 s: in-process retrieval is sub-millisecond, LLM calls take seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pub retrieval_duration: Histogram,
    pub embedding_duration: Histogram,
    /// Embedder calls that failed, serving and ingest alike (counted by `embed::Metered`).
    pub embedding_errors: IntCounter,
    /// Vector-store calls that failed, except requests refused as invalid (`store::Metered`).
    pub vector_store_errors: IntCounter,
    /// 1 when the last readiness check reached the store and found the collection, else 0.
    pub vector_store_up: IntGauge,
    pub llm_duration: Histogram,
    pub llm_tokens: IntCounterVec,
    pub documents_ingested: IntCounter,
    pub chunks_ingested: IntCounter,
    pub ingest_failures: IntCounterVec,
}

fn histogram(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
        .expect("valid metric")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Self {
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                name::HTTP_REQUEST_DURATION,
                "Time to answer an HTTP request, by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let m = Self {
            registry: Registry::new(),
            http_requests: counter_vec(
                name::HTTP_REQUESTS,
                "HTTP requests by route, method and status code.",
                &["route", "method", "code"],
            ),
            http_duration,
            http_in_flight: gauge(name::HTTP_REQUESTS_IN_FLIGHT, "HTTP requests being served."),
            retrieval_duration: histogram(
                name::RETRIEVAL_DURATION,
                "Time to search the vector store for one question.",
            ),
            embedding_duration: histogram(
                name::EMBEDDING_DURATION,
                "Time to embed one batch of texts (a question or an ingest batch).",
            ),
            embedding_errors: counter(
                name::EMBEDDING_ERRORS,
                "Embedder calls that failed (questions and ingest batches).",
            ),
            vector_store_errors: counter(
                name::VECTOR_STORE_ERRORS,
                "Vector-store calls that failed, requests refused as invalid excepted.",
            ),
            vector_store_up: gauge(
                name::VECTOR_STORE_UP,
                "1 when the last readiness check reached the store and its collection, else 0.",
            ),
            llm_duration: histogram(name::LLM_DURATION, "Time to generate one answer."),
            llm_tokens: counter_vec(name::LLM_TOKENS, "LLM tokens spent, by kind.", &["kind"]),
            documents_ingested: counter(name::DOCUMENTS_INGESTED, "Documents stored."),
            chunks_ingested: counter(name::CHUNKS_INGESTED, "Chunks stored."),
            ingest_failures: counter_vec(
                name::INGEST_FAILURES,
                "Documents or batches that could not be stored, by reason.",
                &["reason"],
            ),
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        for c in self.collectors() {
            self.registry.register(c).expect("metric names are unique");
        }
    }

    fn collectors(&self) -> [Box<dyn Collector>; 13] {
        [
            Box::new(self.http_requests.clone()),
            Box::new(self.http_duration.clone()),
            Box::new(self.http_in_flight.clone()),
            Box::new(self.retrieval_duration.clone()),
            Box::new(self.embedding_duration.clone()),
            Box::new(self.embedding_errors.clone()),
            Box::new(self.vector_store_errors.clone()),
            Box::new(self.vector_store_up.clone()),
            Box::new(self.llm_duration.clone()),
            Box::new(self.llm_tokens.clone()),
            Box::new(self.documents_ingested.clone()),
            Box::new(self.chunks_ingested.clone()),
            Box::new(self.ingest_failures.clone()),
        ]
    }

    pub fn record_tokens(&self, usage: crate::generate::Usage) {
        self.llm_tokens
            .with_label_values(&["prompt"])
            .inc_by(u64::from(usage.prompt_tokens));
        self.llm_tokens
            .with_label_values(&["completion"])
            .inc_by(u64::from(usage.completion_tokens));
    }

    pub fn observe(histogram: &Histogram, elapsed: Duration) {
        histogram.observe(elapsed.as_secs_f64());
    }

    /// The names of every registered metric, sorted.
    pub fn names(&self) -> Vec<String> {
        let collectors = self.collectors();
        let mut names: Vec<String> = (collectors.iter())
            .flat_map(|c| c.desc().into_iter().map(|d| d.fq_name.clone()))
            .collect();
        names.sort();
        names
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_holds_exactly_the_published_names() {
        let mut published: Vec<String> = name::ALL.iter().map(|n| n.to_string()).collect();
        published.sort();
        assert_eq!(Metrics::new().names(), published);
    }

    #[test]
    fn histograms_are_published_as_histograms() {
        let m = Metrics::new();
        m.http_duration
            .with_label_values(&["/v1/query"])
            .observe(0.1);
        let text = m.render();
        for h in name::HISTOGRAMS {
            assert!(
                text.contains(&format!("# TYPE {h} histogram")),
                "{h}\n{text}"
            );
        }
    }
}
