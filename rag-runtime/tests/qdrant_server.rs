//! The Qdrant server store over gRPC. The tests that need a server are ignored unless asked for
//! (`cargo test -- --include-ignored`) and then need `QDRANT_URL` naming a Qdrant gRPC port (e.g.
//! `http://localhost:6334`); without it they fail rather than pass having done nothing.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use rag_runtime::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest;
use rag_runtime::rag::Rag;
use rag_runtime::store::qdrant::QdrantStore;
use rag_runtime::store::{Filter, VectorStore};

const NEEDS_QDRANT: &str = "needs a Qdrant server: set QDRANT_URL to its gRPC port";

fn qdrant_url() -> String {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("{NEEDS_QDRANT} (e.g. http://localhost:6334)"),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

fn config(url: &str, collection: &str) -> RuntimeConfig {
    let mut config = RuntimeConfig {
        vector_store: VectorStoreConfig::Qdrant(QdrantConfig {
            url: url.to_string(),
        }),
        ..Default::default()
    };
    config.collection.0 = collection.to_string();
    config
}

#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn ingest_query_and_delete_on_a_qdrant_server() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let collection = unique("ragops-test");
    let rag = Arc::new(Rag::from_config(config(&url, &collection)).await.unwrap());
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await
        .unwrap();
    rag.store.ready().await.unwrap();
    let report = ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(rag.store.count().await.unwrap(), report.chunks as u64);

    let hits = rag
        .retrieve(
            "How does traffic switch during a blue-green rollout?",
            3,
            Filter::default(),
        )
        .await
        .unwrap();
    assert_eq!(hits[0].document_id, "guides/blue-green.md");
    assert!(hits[0].score <= 1.0 + 1e-6);

    // Ingesting again stores the same points.
    ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
        .await
        .unwrap();
    assert_eq!(rag.store.count().await.unwrap(), report.chunks as u64);

    assert!(
        rag.store
            .delete_document("guides/blue-green.md", 0)
            .await
            .unwrap()
            >= 1
    );
    let hits = rag
        .retrieve("blue-green rollout cutover", 10, Filter::default())
        .await
        .unwrap();
    assert!(hits.iter().all(|h| h.document_id != "guides/blue-green.md"));

    let store = QdrantStore::connect(
        &QdrantConfig { url: url.clone() },
        &collection,
        Default::default(),
    )
    .unwrap();
    store.drop_collection(&collection).await.unwrap();
}

#[tokio::test]
#[ignore = "needs a Qdrant server: set QDRANT_URL to its gRPC port"]
async fn aliases_switch_to_a_new_revision() {
    let url = qdrant_url();
    rag_runtime::install_crypto_provider();
    let alias = unique("ragops-alias");
    let qdrant = QdrantConfig { url: url.clone() };
    let mut previous = None;
    for revision in ["r1", "r2"] {
        let target = format!("{alias}-{revision}");
        let rag = Arc::new(Rag::from_config(config(&url, &target)).await.unwrap());
        rag.store
            .ensure_collection(rag.embedder.dimensions())
            .await
            .unwrap();
        ingest::ingest_paths(Arc::clone(&rag), &[common::corpus()], 2, false)
            .await
            .unwrap();
        let store = QdrantStore::connect(&qdrant, &target, Default::default()).unwrap();
        assert_eq!(store.switch_alias(&alias).await.unwrap(), previous);
        previous = Some(target);
    }
    // Reading through the alias reaches the newest revision.
    let through_alias = QdrantStore::connect(&qdrant, &alias, Default::default()).unwrap();
    through_alias.ready().await.unwrap();
    assert!(through_alias.count().await.unwrap() > 0);
    for revision in ["r1", "r2"] {
        through_alias
            .drop_collection(&format!("{alias}-{revision}"))
            .await
            .unwrap();
    }
}

/// Qdrant's REST port is plain HTTP/1.1; a gRPC client there fails with an HTTP/2 framing error.
#[tokio::test]
async fn an_http_port_is_named_in_the_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let reply = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
            let _ = socket.write_all(reply.as_bytes()).await;
            // Open until the client gives up, as a real server would be.
            while socket.read(&mut request).await.is_ok_and(|n| n > 0) {}
        }
    });
    let store = QdrantStore::connect(&QdrantConfig { url }, "any", Default::default()).unwrap();
    let err = store.ready().await.unwrap_err().to_string();
    assert!(err.contains("must name Qdrant's gRPC port (6334"), "{err}");
}

#[tokio::test]
async fn store_errors_show_the_url_without_credentials() {
    let url = "http://user:secret@127.0.0.1:1/?api-key=secret".to_string();
    let store = QdrantStore::connect(&QdrantConfig { url }, "any", Default::default()).unwrap();
    let err = store.ready().await.unwrap_err().to_string();
    assert!(
        err.contains("127.0.0.1:1") && !err.contains("secret"),
        "{err}"
    );
}
