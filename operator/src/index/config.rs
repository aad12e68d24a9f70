//! What a RagIndex puts into a runtime config: its store, collection, distance, embedding and
//! chunking. The pipeline's pods and the ingest Job read the same values from here, so a
//! collection is always queried the way it was filled.

use rag_runtime::config::{
    self as rc, ChunkingConfig, Collection, EmbeddedConfig, EmbeddingConfig, QdrantConfig,
    RuntimeConfig, VectorStoreConfig,
};

use crate::api::{Distance, EmbeddingProvider, RagIndex};

/// Directory of the embedded store inside a runtime pod.
pub const DATA_DIR: &str = "/data";

/// The Qdrant alias of the index (`vectorStore.qdrant.collection`, else its name); the
/// collection name of an embedded store.
pub fn alias(index: &RagIndex) -> String {
    let name = kube::ResourceExt::name_any(index);
    index
        .spec
        .vector_store
        .qdrant
        .as_ref()
        .and_then(|q| q.collection.clone())
        .unwrap_or(name)
}

/// A runtime config holding the index's part, reading and writing `collection`; everything
/// else at its defaults.
pub fn with_index(index: &RagIndex, collection: String) -> RuntimeConfig {
    let spec = &index.spec;
    let vector_store = match &spec.vector_store.qdrant {
        Some(q) => VectorStoreConfig::Qdrant(QdrantConfig { url: q.url.clone() }),
        None => VectorStoreConfig::Embedded(EmbeddedConfig {
            data_dir: DATA_DIR.into(),
        }),
    };
    let embedding = &spec.embedding;
    RuntimeConfig {
        vector_store,
        collection: Collection(collection),
        distance: match spec.distance {
            Distance::Cosine => rc::Distance::Cosine,
            Distance::Dot => rc::Distance::Dot,
            Distance::Euclid => rc::Distance::Euclid,
        },
        embedding: EmbeddingConfig {
            provider: match embedding.provider {
                EmbeddingProvider::Openai => rc::EmbeddingProvider::Openai,
                EmbeddingProvider::Local => rc::EmbeddingProvider::Local,
            },
            model: embedding
                .model
                .clone()
                .unwrap_or_else(|| EmbeddingConfig::default().model),
            dimensions: u32::try_from(embedding.dimensions).unwrap_or(1),
            endpoint: embedding.endpoint.clone(),
            batch_size: embedding
                .batch_size
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(64),
        },
        chunking: ChunkingConfig {
            max_chars: usize::try_from(spec.chunking.max_chars).unwrap_or(1000),
            overlap_chars: usize::try_from(spec.chunking.overlap_chars).unwrap_or(0),
        },
        ..RuntimeConfig::default()
    }
}

/// The collection a pipeline on `index` queries: on a Qdrant server the collection of the
/// index's latest completed ingest (none before the first), in the embedded store the alias
/// (each pod fills its own).
pub fn serving_collection(index: &RagIndex) -> Option<String> {
    match &index.spec.vector_store.qdrant {
        Some(_) => index.status.as_ref()?.active_collection.clone(),
        None => Some(alias(index)),
    }
}
