//! Vector stores: chunks with their dense and BM25 sparse vectors go in, scored chunks come out.
//!
//! Two backends sit behind [`VectorStore`]: [`embedded`] (Qdrant's in-process engine) and
//! [`qdrant`] (a Qdrant server over gRPC). Both store the same payload (`documentId`, `chunk`,
//! `text`, `metadata`), the same named vectors ([`DENSE`], [`SPARSE`]) and fuse hybrid results
//! the same way, so a query ranks alike on a laptop and in a cluster.

pub mod embedded;
pub mod metered;
pub mod qdrant;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{RuntimeConfig, VectorStoreConfig};
use crate::error::{Error, Result};

/// Name of the dense vector in every collection.
pub const DENSE: &str = "dense";
/// Name of the BM25 sparse vector in every collection.
pub const SPARSE: &str = "bm25";
/// Reciprocal rank fusion constant (the usual 60 from the original paper would flatten top ranks
/// for the small candidate lists we fuse).
pub const RRF_K: usize = 10;

/// How many candidates each retriever brings when hybrid retrieval fuses them into `limit`
/// results: deeper than the cut, so fusion can promote chunks one of them ranks just below it.
pub fn fusion_candidates(limit: usize) -> usize {
    limit.max(10) * 2
}

/// A sparse vector: BM25 term weights by hashed term id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sparse {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

/// One chunk of one document, ready to store.
#[derive(Clone, Debug)]
pub struct ChunkRecord {
    pub document_id: String,
    pub chunk: u32,
    pub text: String,
    pub metadata: Map<String, Value>,
    pub dense: Vec<f32>,
    pub sparse: Sparse,
}

impl ChunkRecord {
    pub fn point_id(&self) -> u64 {
        point_id(&self.document_id, self.chunk)
    }

    pub fn payload(&self) -> Map<String, Value> {
        let mut payload = Map::new();
        payload.insert("documentId".into(), Value::String(self.document_id.clone()));
        payload.insert("chunk".into(), Value::from(self.chunk));
        payload.insert("text".into(), Value::String(self.text.clone()));
        payload.insert("metadata".into(), Value::Object(self.metadata.clone()));
        payload
    }
}

/// The stable point id of a chunk, so re-ingesting overwrites instead of duplicating.
pub fn point_id(document_id: &str, chunk: u32) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(document_id.as_bytes());
    hasher.update([0]);
    hasher.update(chunk.to_be_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("a sha256 digest has 8 bytes"))
}

/// What to search for. Either vector may be absent; with both, results are fused by RRF.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    pub dense: Option<Vec<f32>>,
    pub sparse: Option<Sparse>,
    pub limit: usize,
    pub filter: Filter,
    pub score_threshold: Option<f32>,
    /// Breadth of the approximate dense search (`retrieval.searchEf`); never below `limit`.
    pub search_ef: usize,
}

/// Exact-match conditions, all of which must hold. Keys are `documentId` or metadata keys;
/// a list of values matches any of them.
#[derive(Clone, Debug, Default)]
pub struct Filter(pub Vec<(String, Vec<Value>)>);

impl Filter {
    /// Parses the API's `{"key": value | [values]}` form.
    pub fn from_json(value: Option<&Value>) -> Result<Self> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let Value::Object(map) = value else {
            return Err(Error::Invalid(
                "filter must be an object of field: value".into(),
            ));
        };
        let mut conditions = Vec::with_capacity(map.len());
        for (key, value) in map {
            let values = match value {
                Value::Array(values) => values.clone(),
                other => vec![other.clone()],
            };
            if values
                .iter()
                .any(|v| !(v.is_string() || v.is_i64() || v.is_u64() || v.is_boolean()))
            {
                return Err(Error::Invalid(format!(
                    "filter.{key}: only strings, integers and booleans can be matched"
                )));
            }
            conditions.push((payload_key(key), values));
        }
        Ok(Self(conditions))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a filter key lives in the payload.
fn payload_key(key: &str) -> String {
    match key {
        "documentId" | "chunk" => key.to_string(),
        _ => format!("metadata.{key}"),
    }
}

/// A chunk found by a search, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub document_id: String,
    pub chunk: u32,
    pub score: f32,
    pub text: String,
    pub metadata: Map<String, Value>,
}

impl Hit {
    fn from_payload(score: f32, mut payload: Map<String, Value>) -> Self {
        let mut take_str = |key: &str| match payload.remove(key) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let document_id = take_str("documentId");
        let text = take_str("text");
        let chunk = payload.get("chunk").and_then(Value::as_u64).unwrap_or(0) as u32;
        let metadata = match payload.remove("metadata") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Self {
            document_id,
            chunk,
            score,
            text,
            metadata,
        }
    }
}

/// Rescales an RRF score so a chunk ranked first by every retriever scores 1.0. Qdrant gives the
/// chunk at 0-based position `p` of each list `1 / (k + p)`.
pub fn normalise_rrf(score: f32, retrievers: usize) -> f32 {
    score * RRF_K as f32 / retrievers as f32
}

#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Creates the collection when it does not exist; fails if it exists with another size.
    async fn ensure_collection(&self, dimensions: usize) -> Result<()>;
    /// Inserts or overwrites chunks by their stable point ids.
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<()>;
    /// Drops a document's chunks numbered `from_chunk` and up (all of them with 0); returns how many.
    async fn delete_document(&self, document_id: &str, from_chunk: u32) -> Result<u64>;
    async fn search(&self, request: SearchRequest) -> Result<Vec<Hit>>;
    /// Number of stored chunks.
    async fn count(&self) -> Result<u64>;
    /// Reachable and the collection is there.
    async fn ready(&self) -> Result<()>;
    /// Called after bulk writes (at the end of an ingest, and every so many chunks of a large
    /// one): build indexes, flush.
    async fn build_index(&self) -> Result<()>;
}

/// Opens the store the config names.
pub async fn open(config: &RuntimeConfig) -> Result<Arc<dyn VectorStore>> {
    Ok(match &config.vector_store {
        VectorStoreConfig::Embedded(embedded) => Arc::new(
            embedded::EmbeddedStore::open(
                &embedded.data_dir,
                &config.collection.0,
                config.embedding.dimensions as usize,
                config.distance,
            )
            .await?,
        ),
        VectorStoreConfig::Qdrant(qdrant) => Arc::new(qdrant::QdrantStore::connect(
            qdrant,
            &config.collection.0,
            config.distance,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_ne!(point_id("a.md", 0), point_id("a.md", 1));
        assert_ne!(point_id("a.md", 1), point_id("b.md", 1));
        // Pinned: changing the scheme would duplicate every stored chunk on the next ingest.
        assert_eq!(point_id("guides/a.md", 3), 10_506_582_376_640_455_723);
    }

    #[test]
    fn filters_map_keys_into_the_payload() {
        let f = Filter::from_json(Some(
            &serde_json::json!({"documentId": "a.md", "lang": ["en", "de"]}),
        ))
        .unwrap();
        assert_eq!(f.0[0].0, "documentId");
        assert_eq!(
            f.0[1],
            (
                "metadata.lang".to_string(),
                vec![Value::from("en"), Value::from("de")]
            )
        );
        assert!(Filter::from_json(Some(&serde_json::json!([1]))).is_err());
        assert!(Filter::from_json(Some(&serde_json::json!({"x": 1.5}))).is_err());
    }

    #[test]
    fn rrf_normalisation_puts_a_double_first_at_one() {
        let top = 2.0 / RRF_K as f32;
        assert!((normalise_rrf(top, 2) - 1.0).abs() < 1e-6);
        let first_and_second = 1.0 / RRF_K as f32 + 1.0 / (RRF_K as f32 + 1.0);
        assert!(normalise_rrf(first_and_second, 2) < 1.0);
    }
}
