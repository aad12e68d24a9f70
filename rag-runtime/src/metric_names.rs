//! The names of the runtime's Prometheus metrics, compiled without the `server` feature so the
//! operator (alert rules, dashboard checks) names exactly what [`crate::metrics::Metrics`]
//! registers. Histograms also expose `<name>_bucket`, `<name>_sum` and `<name>_count`.

pub const HTTP_REQUESTS: &str = "rag_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "rag_http_request_duration_seconds";
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "rag_http_requests_in_flight";
pub const RETRIEVAL_DURATION: &str = "rag_retrieval_duration_seconds";
pub const EMBEDDING_DURATION: &str = "rag_embedding_duration_seconds";
pub const EMBEDDING_ERRORS: &str = "rag_embedding_errors_total";
pub const VECTOR_STORE_ERRORS: &str = "rag_vector_store_errors_total";
pub const VECTOR_STORE_UP: &str = "rag_vector_store_up";
pub const LLM_DURATION: &str = "rag_llm_duration_seconds";
pub const LLM_TOKENS: &str = "rag_llm_tokens_total";
pub const DOCUMENTS_INGESTED: &str = "rag_documents_ingested_total";
pub const CHUNKS_INGESTED: &str = "rag_chunks_ingested_total";
pub const INGEST_FAILURES: &str = "rag_ingest_failures_total";

/// Every metric the runtime registers.
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS_IN_FLIGHT,
    RETRIEVAL_DURATION,
    EMBEDDING_DURATION,
    EMBEDDING_ERRORS,
    VECTOR_STORE_ERRORS,
    VECTOR_STORE_UP,
    LLM_DURATION,
    LLM_TOKENS,
    DOCUMENTS_INGESTED,
    CHUNKS_INGESTED,
    INGEST_FAILURES,
];

/// The histograms among [`ALL`].
pub const HISTOGRAMS: &[&str] = &[
    HTTP_REQUEST_DURATION,
    RETRIEVAL_DURATION,
    EMBEDDING_DURATION,
    LLM_DURATION,
];
