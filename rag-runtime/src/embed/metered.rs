//! The one door every embedder call of a [`crate::rag::Rag`] goes through, serving and ingest
//! alike: failed calls are counted in `rag_embedding_errors_total`.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::IntCounter;

use super::Embedder;
use crate::error::Result;
use crate::metrics::Metrics;

pub struct Metered {
    inner: Arc<dyn Embedder>,
    errors: IntCounter,
}

impl Metered {
    pub fn new(inner: Arc<dyn Embedder>, metrics: &Metrics) -> Self {
        Self {
            inner,
            errors: metrics.embedding_errors.clone(),
        }
    }
}

#[async_trait]
impl Embedder for Metered {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let result = self.inner.embed(texts).await;
        if result.is_err() {
            self.errors.inc();
        }
        result
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::local::LocalEmbedder;
    use crate::error::Error;

    struct Failing;

    #[async_trait]
    impl Embedder for Failing {
        async fn embed(&self, _: &[String]) -> Result<Vec<Vec<f32>>> {
            Err(Error::Embedding("503 from upstream".into()))
        }
        fn dimensions(&self) -> usize {
            4
        }
        fn describe(&self) -> String {
            "failing".into()
        }
    }

    #[tokio::test]
    async fn failed_calls_are_counted_and_successful_ones_are_not() {
        let metrics = Metrics::new();
        let texts = ["a question".to_string()];
        let failing = Metered::new(Arc::new(Failing), &metrics);
        assert!(failing.embed(&texts).await.is_err());
        assert!(failing.embed(&texts).await.is_err());
        let working = Metered::new(Arc::new(LocalEmbedder::new(4)), &metrics);
        assert_eq!(working.embed(&texts).await.unwrap().len(), 1);
        assert_eq!(metrics.embedding_errors.get(), 2);
        assert_eq!(
            (working.dimensions(), working.describe()),
            (4, LocalEmbedder::new(4).describe())
        );
    }
}
