//! The RAG pipeline shared by every route and by ingest: a question is embedded (dense, plus
//! BM25 when hybrid), searched, and answered from the passages found; a document is chunked,
//! embedded and upserted under stable ids.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::chunk;
use crate::config::RuntimeConfig;
use crate::embed::{self, Embedder, bm25::Bm25};
use crate::error::{Error, Result};
use crate::generate::{self, Generator, Message, Usage, prompt};
use crate::metrics::Metrics;
use crate::store::{self, ChunkRecord, Filter, Hit, SearchRequest, VectorStore};

/// A document to store: its id, full text and free-form metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    pub metadata: Map<String, Value>,
}

/// An answer with the passages it came from, best first.
#[derive(Clone, Debug)]
pub struct Answer {
    pub answer: String,
    pub sources: Vec<Hit>,
    pub usage: Usage,
}

pub struct Rag {
    pub config: RuntimeConfig,
    /// Behind [`store::metered::Metered`], which counts its failed calls.
    pub store: Arc<dyn VectorStore>,
    /// Behind [`embed::metered::Metered`], which counts its failed calls.
    pub embedder: Arc<dyn Embedder>,
    pub bm25: Arc<Bm25>,
    pub generator: Arc<dyn Generator>,
    pub metrics: Metrics,
}

impl Rag {
    /// Builds every backend the config names and makes sure the collection can take vectors.
    pub async fn from_config(config: RuntimeConfig) -> Result<Self> {
        config.validate()?;
        let metrics = Metrics::new();
        let embedder = embed::from_config(&config.embedding)?;
        let generator = generate::from_config(&config.llm)?;
        let store = store::open(&config).await?;
        Ok(Self {
            store: Arc::new(store::metered::Metered::new(store, &metrics)),
            embedder: Arc::new(embed::metered::Metered::new(embedder, &metrics)),
            bm25: Arc::new(Bm25::new()?),
            generator,
            metrics,
            config,
        })
    }

    /// The passages for a question, best first.
    pub async fn retrieve(&self, question: &str, top_k: usize, filter: Filter) -> Result<Vec<Hit>> {
        let started = Instant::now();
        let dense = self
            .embedder
            .embed(std::slice::from_ref(&question.to_string()))
            .await?
            .pop();
        Metrics::observe(&self.metrics.embedding_duration, started.elapsed());
        let sparse = self
            .config
            .retrieval
            .hybrid
            .then(|| self.bm25.query(question));
        let request = SearchRequest {
            dense,
            sparse,
            limit: top_k,
            filter,
            score_threshold: self.config.retrieval.score_threshold,
            search_ef: self.config.retrieval.search_ef as usize,
        };
        let searched = Instant::now();
        let hits = self.store.search(request).await;
        Metrics::observe(&self.metrics.retrieval_duration, searched.elapsed());
        hits
    }

    /// Messages for the model: history, then the question wrapped with the passages.
    pub fn prompt(&self, history: &[Message], question: &str, passages: &[Hit]) -> Vec<Message> {
        prompt::build(&self.config.prompt, history, question, passages)
    }

    /// Retrieves and answers in one go.
    pub async fn answer(&self, question: &str, top_k: usize, filter: Filter) -> Result<Answer> {
        let sources = self.retrieve(question, top_k, filter).await?;
        let messages = self.prompt(&[], question, &sources);
        let started = Instant::now();
        let generation = self.generator.generate(&messages, &sources).await?;
        Metrics::observe(&self.metrics.llm_duration, started.elapsed());
        self.metrics.record_tokens(generation.usage);
        Ok(Answer {
            answer: generation.text,
            sources,
            usage: generation.usage,
        })
    }

    /// A document's chunks, not yet embedded.
    pub fn chunk(&self, document: &Document) -> Vec<ChunkRecord> {
        chunk::split(&document.text, &self.config.chunking)
            .into_iter()
            .enumerate()
            .map(|(i, text)| ChunkRecord {
                document_id: document.id.clone(),
                chunk: i as u32,
                text,
                metadata: document.metadata.clone(),
                dense: Vec::new(),
                sparse: Default::default(),
            })
            .collect()
    }

    /// Fills in the dense and sparse vectors of a batch of chunks.
    pub async fn embed_chunks(&self, mut chunks: Vec<ChunkRecord>) -> Result<Vec<ChunkRecord>> {
        let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
        let started = Instant::now();
        let vectors = self.embedder.embed(&texts).await?;
        Metrics::observe(&self.metrics.embedding_duration, started.elapsed());
        if vectors.len() != chunks.len() {
            return Err(Error::Embedding(format!(
                "asked for {} vectors, got {}",
                chunks.len(),
                vectors.len()
            )));
        }
        for (chunk, dense) in chunks.iter_mut().zip(vectors) {
            chunk.dense = dense;
            chunk.sparse = self.bm25.document(&chunk.text);
        }
        Ok(chunks)
    }

    /// Embeds and upserts a batch of chunks.
    pub async fn store_chunks(&self, chunks: Vec<ChunkRecord>) -> Result<usize> {
        let n = chunks.len();
        let chunks = self.embed_chunks(chunks).await?;
        self.store.upsert(chunks).await?;
        Ok(n)
    }

    /// Drops chunks a shorter new version of a document no longer has.
    pub async fn drop_stale_chunks(&self, document_id: &str, chunks: usize) -> Result<u64> {
        if chunks == 0 {
            // An empty document keeps nothing; deleting "from chunk 0" deletes all.
            return self.store.delete_document(document_id, 0).await;
        }
        self.store.delete_document(document_id, chunks as u32).await
    }
}
