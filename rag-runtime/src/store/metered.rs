//! The one door every vector-store call of a [`crate::rag::Rag`] goes through: failed calls are
//! counted in `rag_vector_store_errors_total`, and the readiness check sets `rag_vector_store_up`.
//! Requests the store refuses as invalid (a filter on a bad key) are the caller's fault and not
//! counted.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::{IntCounter, IntGauge};

use super::{ChunkRecord, Hit, SearchRequest, VectorStore};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

pub struct Metered {
    inner: Arc<dyn VectorStore>,
    errors: IntCounter,
    up: IntGauge,
}

impl Metered {
    pub fn new(inner: Arc<dyn VectorStore>, metrics: &Metrics) -> Self {
        Self {
            inner,
            errors: metrics.vector_store_errors.clone(),
            up: metrics.vector_store_up.clone(),
        }
    }

    fn tally<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && !matches!(err, Error::Invalid(_))
        {
            self.errors.inc();
        }
        result
    }
}

#[async_trait]
impl VectorStore for Metered {
    async fn ensure_collection(&self, dimensions: usize) -> Result<()> {
        self.tally(self.inner.ensure_collection(dimensions).await)
    }
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<()> {
        self.tally(self.inner.upsert(chunks).await)
    }
    async fn delete_document(&self, document_id: &str, from_chunk: u32) -> Result<u64> {
        self.tally(self.inner.delete_document(document_id, from_chunk).await)
    }
    async fn search(&self, request: SearchRequest) -> Result<Vec<Hit>> {
        self.tally(self.inner.search(request).await)
    }
    async fn count(&self) -> Result<u64> {
        self.tally(self.inner.count().await)
    }
    async fn ready(&self) -> Result<()> {
        let result = self.tally(self.inner.ready().await);
        self.up.set(i64::from(result.is_ok()));
        result
    }
    async fn build_index(&self) -> Result<()> {
        self.tally(self.inner.build_index().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose every call fails with the error `fail` makes.
    struct Failing(fn() -> Error);

    #[async_trait]
    impl VectorStore for Failing {
        async fn ensure_collection(&self, _: usize) -> Result<()> {
            Err((self.0)())
        }
        async fn upsert(&self, _: Vec<ChunkRecord>) -> Result<()> {
            Err((self.0)())
        }
        async fn delete_document(&self, _: &str, _: u32) -> Result<u64> {
            Err((self.0)())
        }
        async fn search(&self, _: SearchRequest) -> Result<Vec<Hit>> {
            Err((self.0)())
        }
        async fn count(&self) -> Result<u64> {
            Err((self.0)())
        }
        async fn ready(&self) -> Result<()> {
            Err((self.0)())
        }
        async fn build_index(&self) -> Result<()> {
            Err((self.0)())
        }
    }

    async fn call_each(store: &Metered) {
        assert!(store.ensure_collection(4).await.is_err());
        assert!(store.upsert(vec![]).await.is_err());
        assert!(store.delete_document("a.md", 0).await.is_err());
        assert!(store.search(SearchRequest::default()).await.is_err());
        assert!(store.count().await.is_err());
        assert!(store.ready().await.is_err());
        assert!(store.build_index().await.is_err());
    }

    #[tokio::test]
    async fn every_failed_call_counts_once_and_readiness_sets_up() {
        let metrics = Metrics::new();
        metrics.vector_store_up.set(1);
        let store = Metered::new(Arc::new(Failing(|| Error::store("unreachable"))), &metrics);
        call_each(&store).await;
        assert_eq!(metrics.vector_store_errors.get(), 7);
        assert_eq!(metrics.vector_store_up.get(), 0);
    }

    #[tokio::test]
    async fn invalid_requests_are_the_callers_and_not_counted() {
        let metrics = Metrics::new();
        let invalid = Metered::new(Arc::new(Failing(|| Error::Invalid("bad".into()))), &metrics);
        call_each(&invalid).await;
        assert_eq!(metrics.vector_store_errors.get(), 0);
    }
}
