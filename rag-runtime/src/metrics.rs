//! Prometheus metrics of one runtime: HTTP traffic by route and code, the latency of each stage
//! of a question (retrieval, embedding, LLM), tokens spent, and what ingest stored or failed on.
//! Each [`Metrics`] owns its registry, so tests and benchmarks never share counters.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

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
    pub llm_duration: Histogram,
    pub llm_tokens: IntCounterVec,
    pub documents_ingested: IntCounter,
    pub chunks_ingested: IntCounter,
    pub ingest_failures: IntCounterVec,
}

fn histogram(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "rag_http_requests_total",
                    "HTTP requests by route, method and status code.",
                ),
                &["route", "method", "code"],
            )
            .expect("valid metric"),
            http_duration: HistogramVec::new(
                histogram(
                    "rag_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route.",
                ),
                &["route"],
            )
            .expect("valid metric"),
            http_in_flight: IntGauge::new(
                "rag_http_requests_in_flight",
                "HTTP requests being served.",
            )
            .expect("valid metric"),
            retrieval_duration: Histogram::with_opts(histogram(
                "rag_retrieval_duration_seconds",
                "Time to search the vector store for one question.",
            ))
            .expect("valid metric"),
            embedding_duration: Histogram::with_opts(histogram(
                "rag_embedding_duration_seconds",
                "Time to embed one batch of texts (a question or an ingest batch).",
            ))
            .expect("valid metric"),
            llm_duration: Histogram::with_opts(histogram(
                "rag_llm_duration_seconds",
                "Time to generate one answer.",
            ))
            .expect("valid metric"),
            llm_tokens: IntCounterVec::new(
                Opts::new("rag_llm_tokens_total", "LLM tokens spent, by kind."),
                &["kind"],
            )
            .expect("valid metric"),
            documents_ingested: IntCounter::new(
                "rag_documents_ingested_total",
                "Documents stored.",
            )
            .expect("valid metric"),
            chunks_ingested: IntCounter::new("rag_chunks_ingested_total", "Chunks stored.")
                .expect("valid metric"),
            ingest_failures: IntCounterVec::new(
                Opts::new(
                    "rag_ingest_failures_total",
                    "Documents or batches that could not be stored, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(m.http_requests.clone()),
            Box::new(m.http_duration.clone()),
            Box::new(m.http_in_flight.clone()),
            Box::new(m.retrieval_duration.clone()),
            Box::new(m.embedding_duration.clone()),
            Box::new(m.llm_duration.clone()),
            Box::new(m.llm_tokens.clone()),
            Box::new(m.documents_ingested.clone()),
            Box::new(m.chunks_ingested.clone()),
            Box::new(m.ingest_failures.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        m
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
