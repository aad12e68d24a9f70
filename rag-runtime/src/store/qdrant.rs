//! The Qdrant server store over gRPC (`qdrant-client`). The configured collection name is read
//! through as an alias, so a re-index can fill `<collection>-<revision>` and switch the alias
//! atomically ([`QdrantStore::switch_alias`]).

use async_trait::async_trait;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateAliasBuilder, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeletePointsBuilder, FieldType, Filter as QFilter, Modifier,
    NamedVectors, PointStruct, PrefetchQueryBuilder, Query, QueryPointsBuilder, Range, RrfBuilder,
    SearchParamsBuilder, SparseVectorParamsBuilder, SparseVectorsConfigBuilder,
    UpsertPointsBuilder, Vector, VectorInput, VectorParamsBuilder, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::Value;

use super::{
    ChunkRecord, DENSE, Filter, Hit, RRF_K, SPARSE, SearchRequest, VectorStore, fusion_candidates,
    normalise_rrf,
};
use crate::config::{Distance, QDRANT_API_KEY_ENV, QdrantConfig};
use crate::error::{Error, Result};
use crate::redact;

/// Speaking gRPC to Qdrant's REST port fails deep inside HTTP/2 framing; this says what to change.
const HTTP_PORT_HINT: &str =
    "QDRANT url must name Qdrant's gRPC port (6334 by default), not the HTTP port";

/// What the client reports when the other end does not speak gRPC: HTTP/2 framing fails against
/// an HTTP/1 server (Qdrant's REST port), and a proxy in front of one answers without a status.
const NOT_GRPC: [&str; 3] = [
    "protocol error",
    "http2 error",
    "grpc-status header missing",
];

/// A client error as a store error, led by [`HTTP_PORT_HINT`] when it is one of [`NOT_GRPC`].
/// The client's errors name the url, so they are redacted like every logged or served URL.
fn store_error(err: QdrantError) -> Error {
    let text = redact::urls_in(&err.to_string());
    let lower = text.to_ascii_lowercase();
    if NOT_GRPC.iter().any(|p| lower.contains(p)) {
        return Error::Store(format!("{HTTP_PORT_HINT} ({text})"));
    }
    Error::Store(text)
}

pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    distance: Distance,
}

impl QdrantStore {
    /// Builds the client; connecting happens lazily on the first call.
    pub fn connect(config: &QdrantConfig, collection: &str, distance: Distance) -> Result<Self> {
        let api_key = std::env::var(QDRANT_API_KEY_ENV)
            .ok()
            .filter(|k| !k.is_empty());
        let client = Qdrant::from_url(&config.url)
            .api_key(api_key)
            .skip_compatibility_check()
            .build()
            .map_err(store_error)?;
        Ok(Self {
            client,
            collection: collection.to_string(),
            distance,
        })
    }

    /// The same store writing to another collection (a re-index target).
    pub fn with_collection(&self, collection: &str) -> Self {
        Self {
            client: self.client.clone(),
            collection: collection.to_string(),
            distance: self.distance,
        }
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// Fails when `alias` names a real collection. Qdrant refuses an alias under a collection's
    /// name, so a revision filled now could never be switched to and would be left behind; a
    /// plain `ingest` (no `--revision`) on a fresh server creates exactly such a collection.
    pub async fn ensure_alias_free(&self, alias: &str) -> Result<()> {
        let collections = self.client.list_collections().await.map_err(store_error)?;
        if collections.collections.iter().any(|c| c.name == alias) {
            return Err(Error::Invalid(format!(
                "{alias} is a collection, not an alias (a plain `ingest` without --revision \
                 creates it), so the alias {alias} cannot be switched to a revision; nothing was \
                 written. Delete the collection {alias} and ingest with --revision again (readers \
                 of {alias} fail until the alias exists), or keep ingesting without --revision"
            )));
        }
        Ok(())
    }

    /// The collection `alias` points at, if it exists.
    pub async fn alias_target(&self, alias: &str) -> Result<Option<String>> {
        let aliases = self.client.list_aliases().await.map_err(store_error)?;
        Ok(aliases
            .aliases
            .into_iter()
            .find(|a| a.alias_name == alias)
            .map(|a| a.collection_name))
    }

    /// Points `alias` at this store's collection; returns the collection it pointed at before.
    pub async fn switch_alias(&self, alias: &str) -> Result<Option<String>> {
        let previous = self.alias_target(alias).await?;
        // Qdrant replaces an existing alias of the same name in one step, so readers never
        // see the alias missing.
        self.client
            .create_alias(CreateAliasBuilder::new(&self.collection, alias))
            .await
            .map_err(store_error)?;
        Ok(previous.filter(|p| p != &self.collection))
    }

    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        self.client
            .delete_collection(name)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

fn qdrant_distance(distance: Distance) -> qdrant_client::qdrant::Distance {
    match distance {
        Distance::Cosine => qdrant_client::qdrant::Distance::Cosine,
        Distance::Dot => qdrant_client::qdrant::Distance::Dot,
        Distance::Euclid => qdrant_client::qdrant::Distance::Euclid,
    }
}

fn matches(key: &str, value: &Value) -> Result<Condition> {
    Ok(match value {
        Value::String(s) => Condition::matches(key, s.clone()),
        Value::Bool(b) => Condition::matches(key, *b),
        Value::Number(n) if n.is_i64() => Condition::matches(key, n.as_i64().unwrap_or_default()),
        other => return Err(Error::Invalid(format!("cannot match on {other}"))),
    })
}

fn qdrant_filter(filter: &Filter) -> Result<Option<QFilter>> {
    if filter.is_empty() {
        return Ok(None);
    }
    let mut must = Vec::with_capacity(filter.0.len());
    for (key, values) in &filter.0 {
        let any: Vec<Condition> = values
            .iter()
            .map(|v| matches(key, v))
            .collect::<Result<_>>()?;
        must.push(match <[Condition; 1]>::try_from(any) {
            Ok([single]) => single,
            Err(any) => QFilter::should(any).into(),
        });
    }
    Ok(Some(QFilter::must(must)))
}

fn document_filter(document_id: &str, from_chunk: u32) -> QFilter {
    let mut must = vec![Condition::matches("documentId", document_id.to_string())];
    if from_chunk > 0 {
        must.push(Condition::range(
            "chunk",
            Range {
                gte: Some(f64::from(from_chunk)),
                ..Default::default()
            },
        ));
    }
    QFilter::must(must)
}

fn search_params(ef: usize, limit: usize) -> SearchParamsBuilder {
    SearchParamsBuilder::default().hnsw_ef(ef.max(limit) as u64)
}

fn to_point(chunk: ChunkRecord) -> PointStruct {
    let mut vectors = NamedVectors::default().add_vector(DENSE, Vector::from(chunk.dense.clone()));
    // A chunk of only stop words has no terms; it is still found by its dense vector.
    if !chunk.sparse.indices.is_empty() {
        vectors = vectors.add_vector(
            SPARSE,
            Vector::new_sparse(chunk.sparse.indices.clone(), chunk.sparse.values.clone()),
        );
    }
    PointStruct::new(chunk.point_id(), vectors, Payload::from(chunk.payload()))
}

#[async_trait]
impl VectorStore for QdrantStore {
    async fn ensure_collection(&self, dimensions: usize) -> Result<()> {
        if self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(store_error)?
        {
            return Ok(());
        }
        let mut dense = VectorsConfigBuilder::default();
        dense.add_named_vector_params(
            DENSE,
            VectorParamsBuilder::new(dimensions as u64, qdrant_distance(self.distance)),
        );
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(
            SPARSE,
            SparseVectorParamsBuilder::default().modifier(Modifier::Idf as i32),
        );
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&self.collection)
                    .vectors_config(dense)
                    .sparse_vectors_config(sparse),
            )
            .await
            .map_err(store_error)?;
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(
                    &self.collection,
                    "documentId",
                    FieldType::Keyword,
                )
                .wait(true),
            )
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = chunks.into_iter().map(to_point).collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete_document(&self, document_id: &str, from_chunk: u32) -> Result<u64> {
        let filter = document_filter(document_id, from_chunk);
        let count = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(filter.clone())
                    .exact(true),
            )
            .await
            .map_err(store_error)?
            .result
            .map_or(0, |r| r.count);
        if count > 0 {
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(filter)
                        .wait(true),
                )
                .await
                .map_err(store_error)?;
        }
        Ok(count)
    }

    async fn search(&self, request: SearchRequest) -> Result<Vec<Hit>> {
        let filter = qdrant_filter(&request.filter)?;
        let mut queries: Vec<(VectorInput, &str)> = Vec::new();
        if let Some(dense) = &request.dense {
            queries.push((VectorInput::from(dense.clone()), DENSE));
        }
        if let Some(sparse) = request.sparse.as_ref().filter(|s| !s.indices.is_empty()) {
            queries.push((
                VectorInput::new_sparse(sparse.indices.clone(), sparse.values.clone()),
                SPARSE,
            ));
        }
        let retrievers = queries.len();
        let mut builder = QueryPointsBuilder::new(&self.collection)
            .limit(request.limit as u64)
            .with_payload(true);
        match <[(VectorInput, &str); 1]>::try_from(queries) {
            Ok([(vector, using)]) => {
                builder = builder
                    .query(Query::new_nearest(vector))
                    .using(using)
                    .params(search_params(request.search_ef, request.limit));
                if let Some(filter) = filter {
                    builder = builder.filter(filter);
                }
                if let Some(t) = request.score_threshold {
                    builder = builder.score_threshold(t);
                }
            }
            Err(queries) if queries.is_empty() => return Ok(vec![]),
            Err(queries) => {
                for (vector, using) in queries {
                    let mut prefetch = PrefetchQueryBuilder::default()
                        .query(Query::new_nearest(vector))
                        .using(using)
                        .limit(fusion_candidates(request.limit) as u64)
                        .params(search_params(
                            request.search_ef,
                            fusion_candidates(request.limit),
                        ));
                    if let Some(filter) = &filter {
                        prefetch = prefetch.filter(filter.clone());
                    }
                    builder = builder.add_prefetch(prefetch);
                }
                builder = builder.query(Query::new_rrf(RrfBuilder::with_k(RRF_K as u32)));
            }
        }
        let response = self.client.query(builder).await.map_err(store_error)?;
        let threshold = request.score_threshold;
        Ok(response
            .result
            .into_iter()
            .map(|p| {
                let score = if retrievers > 1 {
                    normalise_rrf(p.score, retrievers)
                } else {
                    p.score
                };
                let payload: serde_json::Map<String, Value> = Payload::from(p.payload).into();
                Hit::from_payload(score, payload)
            })
            .filter(|hit| retrievers == 1 || threshold.is_none_or(|t| hit.score >= t))
            .collect())
    }

    async fn count(&self) -> Result<u64> {
        let response = self
            .client
            .count(CountPointsBuilder::new(&self.collection).exact(true))
            .await
            .map_err(store_error)?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    async fn ready(&self) -> Result<()> {
        // Resolves aliases too: with an alias, this checks what it points at.
        self.client
            .collection_info(&self.collection)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn build_index(&self) -> Result<()> {
        // The server indexes in the background; nothing to wait for.
        Ok(())
    }
}
