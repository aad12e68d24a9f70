//! What a RagIndex puts into a runtime config: its store, collection, distance, embedding and
//! chunking. The pipeline's pods and the ingest Job read the same values from here, so a
//! collection is always queried the way it was filled.

use rag_runtime::config::{
    self as rc, ChunkingConfig, Collection, EmbeddedConfig, EmbeddingConfig, QdrantConfig,
    RuntimeConfig, UrlSourcesConfig, VectorStoreConfig,
};

use crate::api::{Distance, EmbeddingProvider, EmbeddingSpec, RagIndex};

/// Directory of the embedded store inside a runtime pod.
pub const DATA_DIR: &str = "/data";

/// The Qdrant alias of the index: `vectorStore.qdrant.collection`, else `<namespace>_<name>`
/// (an underscore is in no Kubernetes name, so two indexes never default to the same alias);
/// the collection name of an embedded store (the index's name: it lives in each pod).
pub fn alias(index: &RagIndex) -> String {
    let name = kube::ResourceExt::name_any(index);
    match &index.spec.vector_store.qdrant {
        Some(q) => q.collection.clone().unwrap_or_else(|| {
            let ns = kube::ResourceExt::namespace(index).unwrap_or_default();
            format!("{ns}_{name}")
        }),
        None => name,
    }
}

/// A runtime config holding the index's part, reading and writing `collection` with vectors
/// from `embedding`; everything else at its defaults.
pub fn with_index(
    index: &RagIndex,
    collection: String,
    embedding: &EmbeddingSpec,
) -> RuntimeConfig {
    let spec = &index.spec;
    let vector_store = match &spec.vector_store.qdrant {
        Some(q) => VectorStoreConfig::Qdrant(QdrantConfig { url: q.url.clone() }),
        None => VectorStoreConfig::Embedded(EmbeddedConfig {
            data_dir: DATA_DIR.into(),
        }),
    };
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

/// Where the ingest Job may fetch `url` sources from: the index's allow lists, and the cluster's
/// own networks (`--cluster-cidrs`) refused besides the runtime's built-in rules.
pub fn url_sources(index: &RagIndex, cluster_cidrs: &[ipnet::IpNet]) -> UrlSourcesConfig {
    let ingest = &index.spec.ingest;
    UrlSourcesConfig {
        allow_hosts: ingest.allow_hosts.clone(),
        // The schema's `isCIDR` rule has checked every entry.
        allow_cidrs: ingest
            .allow_cidrs
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect(),
        deny_cidrs: cluster_cidrs.to_vec(),
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

/// The embedding queries on `index` must use: the one its active collection was built with on a
/// Qdrant server (recorded when the ingest was adopted), the spec's in the embedded store (each
/// pod ingests with it).
pub fn serving_embedding(index: &RagIndex) -> &EmbeddingSpec {
    let recorded = index
        .spec
        .vector_store
        .qdrant
        .as_ref()
        .and_then(|_| Some(&index.status.as_ref()?.indexed_with.as_ref()?.embedding));
    recorded.unwrap_or(&index.spec.embedding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(store: &str) -> RagIndex {
        serde_yaml::from_str(&format!(
            r#"
apiVersion: ragops.io/v1alpha1
kind: RagIndex
metadata: {{ name: handbook, namespace: team-a }}
spec:
  vectorStore: {store}
  embedding: {{ provider: openai, model: new-model, dimensions: 1024 }}
status:
  activeCollection: handbook-0123456789
  indexedWith:
    embedding: {{ provider: local, dimensions: 64 }}
    chunking: {{ maxChars: 1000, overlapChars: 150 }}
    distance: Cosine
"#
        ))
        .unwrap()
    }

    #[test]
    fn queries_use_the_embedding_their_collection_was_built_with() {
        let qdrant = index(r#"{ qdrant: { url: "http://q:6334" } }"#);
        assert_eq!(
            serving_embedding(&qdrant).dimensions,
            64,
            "until the re-index is adopted"
        );
        assert_eq!(
            serving_collection(&qdrant).as_deref(),
            Some("handbook-0123456789")
        );
        let embedded = index("{ embedded: {} }");
        assert_eq!(
            serving_embedding(&embedded).dimensions,
            1024,
            "each pod ingests with the spec"
        );
        assert_eq!(serving_collection(&embedded).as_deref(), Some("handbook"));
        let config = with_index(&qdrant, "c".into(), serving_embedding(&qdrant));
        assert_eq!(config.embedding.provider, rc::EmbeddingProvider::Local);
    }
}
