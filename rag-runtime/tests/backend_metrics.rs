//! The metrics alerts are built on, driven by real failures over HTTP: a Qdrant server that is not
//! there fails readiness (`rag_vector_store_up 0`) and counts every failed store call; a store
//! that is there reports `rag_vector_store_up 1` and counts nothing.

mod common;

use common::TestServer;
use rag_runtime::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::state::ApiKeys;
use serde_json::json;

/// A loopback gRPC url on which nothing listens (the port was just free).
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The value of an unlabelled sample in the text exposition.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn an_unreachable_store_is_down_and_its_failed_calls_are_counted() {
    let config = RuntimeConfig {
        vector_store: VectorStoreConfig::Qdrant(QdrantConfig { url: closed_url() }),
        ..Default::default()
    };
    let mut server = TestServer::start(config, ApiKeys::default(), &[]).await;
    let before = server.metrics().await;
    assert_eq!(sample(&before, "rag_vector_store_errors_total"), Some(0.0));
    assert_eq!(sample(&before, "rag_embedding_errors_total"), Some(0.0));

    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let after_probe = server.metrics().await;
    assert_eq!(sample(&after_probe, "rag_vector_store_up"), Some(0.0));
    assert_eq!(
        sample(&after_probe, "rag_vector_store_errors_total"),
        Some(1.0)
    );

    let query = server
        .post_json("/v1/query", json!({"query": "anything"}))
        .await;
    assert!(query.status().is_server_error(), "{}", query.status());
    let after_query = server.metrics().await;
    assert_eq!(
        sample(&after_query, "rag_vector_store_errors_total"),
        Some(2.0)
    );
    // The local embedder did its part; only the store failed.
    assert_eq!(
        sample(&after_query, "rag_embedding_errors_total"),
        Some(0.0)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_reachable_store_is_up_and_counts_no_errors() {
    let mut server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let query = server
        .post_json("/v1/query", json!({"query": "rollout"}))
        .await;
    assert_eq!(query.status(), 200);
    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, "rag_vector_store_up"), Some(1.0));
    assert_eq!(sample(&metrics, "rag_vector_store_errors_total"), Some(0.0));
    assert_eq!(sample(&metrics, "rag_embedding_errors_total"), Some(0.0));
    server.shutdown().await;
}
