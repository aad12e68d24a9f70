//! The embedded store: Qdrant's in-process engine (`qdrant-edge`), one shard directory per
//! collection under the data directory. Its API is synchronous.
//!
//! Searches run on the async worker that serves the request: they are bounded CPU work (a
//! quarter of a millisecond at 10k chunks, about one at 100k), and running them in place caps
//! concurrent searches at the number of workers (the cores) and saves two thread hand-offs per
//! query, about a tenth of the throughput. Writes, counts and index builds, which can take
//! seconds, go to tokio's blocking pool so they never hold a worker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, EdgeConfig, EdgeOptimizersConfig, EdgeShard,
    EdgeSparseVectorParams, EdgeVectorParams, FieldCondition, FieldIndexOperations,
    Filter as EdgeFilter, Fusion, HnswIndexConfig, JsonPath, Match, Modifier, NamedQuery,
    PayloadFieldSchema, PayloadSchemaType, PointInsertOperations, PointOperations, PointStruct,
    Prefetch, QuantizationSearchParams, QueryEnum, QueryRequest, Range, ScalarQuantizationConfig,
    ScalarType, ScoringQuery, SearchParams, SparseVector, UpdateOperation, ValueVariants, Vector,
    VectorInternal, Vectors, WithPayloadInterface, WithVector,
};
use serde_json::Value;

use super::{
    ChunkRecord, DENSE, Filter, Hit, RRF_K, SPARSE, SearchRequest, VectorStore, fusion_candidates,
    normalise_rrf,
};
use crate::config::Distance;
use crate::error::{Error, Result};

/// Segments above this size (KB) get an HNSW index when the index is built (`build_index`);
/// below it a plain scan is as fast.
const INDEXING_THRESHOLD_KB: usize = 1_000;
const FULL_SCAN_THRESHOLD_KB: usize = 256;
/// Graph links per point and build breadth: twice Qdrant's defaults. Hashed local embeddings
/// spread chunks evenly through the space, where a sparser graph misses a third of the true
/// nearest chunks; the denser one costs 40% more build time and finds a quarter more of them.
const HNSW_M: usize = 32;
const HNSW_EF_CONSTRUCT: usize = 200;
/// int8 quantisation maps the value range that holds this share of the components.
const QUANTILE: f32 = 0.99;
/// The quantised search brings this many times the candidates asked for; the full vectors
/// then pick the best of them.
const OVERSAMPLING: f64 = 2.0;

pub struct EmbeddedStore {
    shard: Arc<EdgeShard>,
    dimensions: usize,
}

impl EmbeddedStore {
    /// Opens the collection under `data_dir`, creating it (and the directory) when missing.
    pub async fn open(
        data_dir: &Path,
        collection: &str,
        dimensions: usize,
        distance: Distance,
    ) -> Result<Self> {
        let path = data_dir.join(collection);
        let shard = blocking(move || open_shard(&path, dimensions, distance)).await??;
        Ok(Self {
            shard: Arc::new(shard),
            dimensions,
        })
    }

    /// How many stored vectors sit in a graph index rather than in segments searched by a scan.
    pub fn indexed_vectors(&self) -> usize {
        self.shard.info().indexed_vectors_count
    }

    async fn with_shard<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeShard) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shard = Arc::clone(&self.shard);
        blocking(move || f(&shard)).await?
    }
}

fn open_shard(path: &PathBuf, dimensions: usize, distance: Distance) -> Result<EdgeShard> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    if path.join("edge_config.json").exists() {
        let shard = EdgeShard::load(path, None).map_err(Error::store)?;
        let stored = shard.config().vectors.get(DENSE).map(|v| v.size);
        if stored != Some(dimensions) {
            return Err(Error::Invalid(format!(
                "embedding.dimensions: the collection at {} holds vectors of size {stored:?}, the config says {dimensions}",
                path.display()
            )));
        }
        return Ok(shard);
    }
    let config = EdgeConfig {
        // Payload on disk keeps the resident set small for large corpora; reads go through mmap.
        on_disk_payload: true,
        vectors: HashMap::from([(
            DENSE.to_string(),
            EdgeVectorParams::builder(dimensions, edge_distance(distance))
                // int8 copies of the vectors drive the graph search (a quarter of the memory
                // traffic); the candidates are then rescored with the full vectors.
                .quantization_config(
                    ScalarQuantizationConfig {
                        r#type: ScalarType::Int8,
                        quantile: Some(QUANTILE),
                        always_ram: Some(true),
                    }
                    .into(),
                )
                .build(),
        )]),
        sparse_vectors: HashMap::from([(
            SPARSE.to_string(),
            EdgeSparseVectorParams {
                modifier: Some(Modifier::Idf),
                ..Default::default()
            },
        )]),
        // Qdrant scans segments below `full_scan_threshold` (KB of vectors, 10 MB by default)
        // instead of walking their graph; at a few hundred vectors a scan is as fast.
        hnsw_config: HnswIndexConfig {
            full_scan_threshold: FULL_SCAN_THRESHOLD_KB,
            m: HNSW_M,
            ef_construct: HNSW_EF_CONSTRUCT,
            ..Default::default()
        },
        optimizers: EdgeOptimizersConfig {
            indexing_threshold: Some(INDEXING_THRESHOLD_KB),
            // One indexed segment: the shard searches its segments one after another.
            default_segment_number: Some(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let shard = EdgeShard::new(path, config).map_err(Error::store)?;
    shard
        .update(UpdateOperation::FieldIndexOperation(
            FieldIndexOperations::CreateIndex(CreateIndex {
                field_name: json_path("documentId")?,
                field_schema: Some(PayloadFieldSchema::FieldType(PayloadSchemaType::Keyword)),
            }),
        ))
        .map_err(Error::store)?;
    Ok(shard)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store(format!("embedded store task failed: {e}")))
}

fn edge_distance(distance: Distance) -> qdrant_edge::Distance {
    match distance {
        Distance::Cosine => qdrant_edge::Distance::Cosine,
        Distance::Dot => qdrant_edge::Distance::Dot,
        Distance::Euclid => qdrant_edge::Distance::Euclid,
    }
}

fn json_path(key: &str) -> Result<JsonPath> {
    key.parse()
        .map_err(|_| Error::Invalid(format!("filter key {key:?} is not a valid field path")))
}

fn value_variant(value: &Value) -> Result<ValueVariants> {
    match value {
        Value::String(s) => Ok(ValueVariants::String(s.clone())),
        Value::Bool(b) => Ok(ValueVariants::Bool(*b)),
        Value::Number(n) if n.is_i64() => {
            Ok(ValueVariants::Integer(n.as_i64().unwrap_or_default()))
        }
        other => Err(Error::Invalid(format!("cannot match on {other}"))),
    }
}

fn matches(key: &str, value: &Value) -> Result<Condition> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(key)?,
        Match::new_value(value_variant(value)?),
    )))
}

fn edge_filter(filter: &Filter) -> Result<Option<EdgeFilter>> {
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
            Err(any) => Condition::Filter(EdgeFilter {
                should: Some(any),
                ..Default::default()
            }),
        });
    }
    Ok(Some(EdgeFilter {
        must: Some(must),
        ..Default::default()
    }))
}

fn document_filter(document_id: &str, from_chunk: u32) -> Result<EdgeFilter> {
    let mut must = vec![matches("documentId", &Value::from(document_id))?];
    if from_chunk > 0 {
        let range = Range {
            gte: Some(f64::from(from_chunk).into()),
            ..Default::default()
        };
        must.push(Condition::Field(FieldCondition::new_range(
            json_path("chunk")?,
            range,
        )));
    }
    Ok(EdgeFilter {
        must: Some(must),
        ..Default::default()
    })
}

fn to_point(chunk: ChunkRecord) -> Result<qdrant_edge::PointStructPersisted> {
    let mut vectors = vec![(DENSE, Vector::new_dense(chunk.dense.clone()))];
    // A chunk of only stop words has no terms; it is still found by its dense vector.
    if !chunk.sparse.indices.is_empty() {
        let sparse = SparseVector::new(chunk.sparse.indices.clone(), chunk.sparse.values.clone())
            .map_err(|e| Error::Store(format!("invalid sparse vector: {e}")))?;
        vectors.push((SPARSE, Vector::from(sparse)));
    }
    Ok(PointStruct::new(
        chunk.point_id(),
        Vectors::new_named(vectors),
        Value::Object(chunk.payload()),
    )
    .into())
}

fn search_params(ef: usize, limit: usize) -> SearchParams {
    SearchParams {
        hnsw_ef: Some(ef.max(limit)),
        quantization: Some(QuantizationSearchParams {
            ignore: false,
            rescore: Some(true),
            oversampling: Some(OVERSAMPLING),
        }),
        ..Default::default()
    }
}

fn nearest(vector: VectorInternal, using: &str) -> ScoringQuery {
    ScoringQuery::Vector(QueryEnum::Nearest(NamedQuery {
        query: vector,
        using: Some(using.to_string()),
    }))
}

fn query_request(request: &SearchRequest) -> Result<(QueryRequest, usize)> {
    let filter = edge_filter(&request.filter)?;
    let mut queries = Vec::new();
    if let Some(dense) = &request.dense {
        queries.push(nearest(VectorInternal::from(dense.clone()), DENSE));
    }
    if let Some(sparse) = request.sparse.as_ref().filter(|s| !s.indices.is_empty()) {
        let sparse = SparseVector::new(sparse.indices.clone(), sparse.values.clone())
            .map_err(|e| Error::Invalid(format!("invalid sparse query: {e}")))?;
        queries.push(nearest(VectorInternal::from(sparse), SPARSE));
    }
    let retrievers = queries.len();
    let base = QueryRequest {
        prefetches: vec![],
        query: None,
        filter: None,
        score_threshold: None,
        limit: request.limit,
        offset: 0,
        params: Some(search_params(request.search_ef, request.limit)),
        with_vector: WithVector::Bool(false),
        with_payload: WithPayloadInterface::Bool(true),
    };
    let request = match <[ScoringQuery; 1]>::try_from(queries) {
        Ok([single]) => QueryRequest {
            query: Some(single),
            filter,
            score_threshold: request.score_threshold.map(Into::into),
            ..base
        },
        Err(queries) => QueryRequest {
            prefetches: queries
                .into_iter()
                .map(|query| Prefetch {
                    prefetches: vec![],
                    query: Some(query),
                    limit: fusion_candidates(request.limit),
                    params: Some(search_params(
                        request.search_ef,
                        fusion_candidates(request.limit),
                    )),
                    filter: filter.clone(),
                    score_threshold: None,
                })
                .collect(),
            query: Some(ScoringQuery::Fusion(Fusion::Rrf {
                k: RRF_K,
                weights: None,
            })),
            ..base
        },
    };
    Ok((request, retrievers))
}

#[async_trait]
impl VectorStore for EmbeddedStore {
    async fn ensure_collection(&self, dimensions: usize) -> Result<()> {
        if dimensions != self.dimensions {
            return Err(Error::Invalid(format!(
                "embedding.dimensions: collection holds {} dimensions, asked for {dimensions}",
                self.dimensions
            )));
        }
        Ok(())
    }

    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let points = chunks
            .into_iter()
            .map(to_point)
            .collect::<Result<Vec<_>>>()?;
        self.with_shard(move |shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
                ))
                .map_err(Error::store)
        })
        .await
    }

    async fn delete_document(&self, document_id: &str, from_chunk: u32) -> Result<u64> {
        let filter = document_filter(document_id, from_chunk)?;
        self.with_shard(move |shard| {
            let count = shard
                .count(CountRequest {
                    filter: Some(filter.clone()),
                    exact: true,
                })
                .map_err(Error::store)?;
            if count > 0 {
                shard
                    .update(UpdateOperation::PointOperation(
                        PointOperations::DeletePointsByFilter(filter),
                    ))
                    .map_err(Error::store)?;
            }
            Ok(count as u64)
        })
        .await
    }

    async fn search(&self, request: SearchRequest) -> Result<Vec<Hit>> {
        let (query, retrievers) = query_request(&request)?;
        if retrievers == 0 {
            return Ok(vec![]);
        }
        let threshold = request.score_threshold;
        // In place, not on the blocking pool: see the module docs.
        let points = self.shard.query(query).map_err(Error::store)?;
        Ok(points
            .into_iter()
            .map(|p| {
                let score = if retrievers > 1 {
                    normalise_rrf(p.score, retrievers)
                } else {
                    p.score
                };
                Hit::from_payload(score, p.payload.map(|p| p.0).unwrap_or_default())
            })
            // Fused scores are only comparable after normalising, so the threshold applies here.
            .filter(|hit| retrievers == 1 || threshold.is_none_or(|t| hit.score >= t))
            .collect())
    }

    async fn count(&self) -> Result<u64> {
        self.with_shard(|shard| {
            Ok(shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(Error::store)? as u64)
        })
        .await
    }

    async fn ready(&self) -> Result<()> {
        // The shard lives in this process: if it opened, it is there.
        Ok(())
    }

    async fn build_index(&self) -> Result<()> {
        self.with_shard(|shard| {
            shard.optimize().map_err(Error::store)?;
            shard.flush();
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
