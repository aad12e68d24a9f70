//! Embedders: text in, vectors out. Dense vectors come from an [`Embedder`] (the built-in
//! [`local`] one or any OpenAI-compatible server, [`openai`]); sparse BM25 vectors from
//! [`bm25::Bm25`], which is the same whatever the dense provider is.

pub mod bm25;
pub mod local;
pub mod metered;
pub mod openai;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{EmbeddingConfig, EmbeddingProvider};
use crate::error::Result;

#[async_trait]
pub trait Embedder: Send + Sync {
    /// One vector per text, in order, each of [`Embedder::dimensions`] floats.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    fn dimensions(&self) -> usize;
    /// A short description for logs and `/readyz`.
    fn describe(&self) -> String;
}

/// Builds the embedder the config names.
pub fn from_config(config: &EmbeddingConfig) -> Result<Arc<dyn Embedder>> {
    Ok(match config.provider {
        EmbeddingProvider::Local => Arc::new(local::LocalEmbedder::new(config.dimensions as usize)),
        EmbeddingProvider::Openai => Arc::new(openai::OpenAiEmbedder::new(config)?),
    })
}
