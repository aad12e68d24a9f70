//! The Qdrant server store over gRPC. Compiled always; runs only where `QDRANT_URL` points at a
//! Qdrant gRPC port (e.g. `http://localhost:6334`), and prints why it skipped otherwise.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rag_runtime::config::{QdrantConfig, RuntimeConfig, VectorStoreConfig};
use rag_runtime::ingest;
use rag_runtime::rag::Rag;
use rag_runtime::store::qdrant::QdrantStore;
use rag_runtime::store::{Filter, VectorStore};

fn qdrant_url() -> Option<String> {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: QDRANT_URL is not set");
            None
        }
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
async fn ingest_query_and_delete_on_a_qdrant_server() {
    let Some(url) = qdrant_url() else { return };
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
async fn aliases_switch_to_a_new_revision() {
    let Some(url) = qdrant_url() else { return };
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
