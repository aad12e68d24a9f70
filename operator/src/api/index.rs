//! `RagIndex`: what to index, where the vectors live, and which embedding model makes them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// A corpus, its vector store and its embedding model.
// Each printcolumn repeats `type_`; clippy mistakes that for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ragops.io",
    version = "v1alpha1",
    kind = "RagIndex",
    plural = "ragindexes",
    namespaced,
    status = "RagIndexStatus",
    shortname = "ragi",
    category = "rag",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Collection",
        type_ = "string",
        json_path = ".status.activeCollection"
    ),
    printcolumn(name = "Documents", type_ = "integer", json_path = ".status.documents"),
    printcolumn(name = "Chunks", type_ = "integer", json_path = ".status.chunks"),
    printcolumn(name = "Indexed", type_ = "date", json_path = ".status.lastIndexedAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    // The name is a label value of the ingest Jobs and their pods.
    validation = Rule::new("self.metadata.name.size() <= 63").message("metadata.name: a RagIndex name is at most 63 characters (it is a label value of its ingest Jobs)")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.vectorStore.qdrant) || !has(self.sources) || self.sources.all(s, has(s.configMap))").message("spec.sources: url and persistentVolumeClaim sources need vectorStore.qdrant (an embedded store ingests ConfigMaps in each pod)"))]
#[x_kube(validation = Rule::new("has(self.vectorStore.qdrant) || !has(self.backup)").message("spec.backup: snapshots need vectorStore.qdrant"))]
pub struct RagIndexSpec {
    /// Where the vectors are stored: exactly one of `qdrant` or `embedded`.
    pub vector_store: VectorStoreSpec,
    /// The model that turns text into vectors.
    pub embedding: EmbeddingSpec,
    /// Similarity measure between vectors.
    #[serde(default)]
    pub distance: Distance,
    /// How documents are cut into chunks before embedding.
    #[serde(default)]
    pub chunking: ChunkingSpec,
    /// Where the documents come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub sources: Vec<SourceSpec>,
    /// Cron schedule (five fields, UTC) for periodic re-ingestion, for example `0 3 * * *`: the
    /// ingest Job re-reads every source and stores a new collection only when their content
    /// changed. ConfigMap sources are watched, so without a schedule only changes re-index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*(\S+\s+){4}\S+\s*$"))]
    pub schedule: Option<String>,
    /// What happens to the collections this index created when the RagIndex is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Superseded Qdrant collections to keep (newest first) for rollbacks, besides those a
    /// pipeline still serves; older ones are dropped.
    #[serde(default = "default_retain_collections")]
    #[schemars(range(min = 0, max = 50))]
    pub retain_collections: i32,
    /// How the ingest Job runs (Qdrant stores).
    #[serde(default)]
    pub ingest: IngestSpec,
    /// Periodic Qdrant snapshots of the active collection (Qdrant stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// Snapshots of the collection that serves, taken on the Qdrant server.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Cron schedule (five fields, UTC), for example `0 2 * * *`; the first snapshot is taken
    /// as soon as the index is ready.
    #[schemars(regex(pattern = r"^\s*(\S+\s+){4}\S+\s*$"))]
    pub schedule: String,
    /// Snapshots kept, newest first, across the index's collections.
    #[serde(default = "default_backup_retain")]
    #[schemars(range(min = 1, max = 100))]
    pub retain: i32,
}

fn default_backup_retain() -> i32 {
    7
}

/// The ingest Job of a Qdrant-backed index.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.allowCIDRs) || self.allowCIDRs.all(c, isCIDR(c))").message("spec.ingest.allowCIDRs: every entry must be a network such as 10.20.0.0/16"))]
pub struct IngestSpec {
    /// rag-runtime image the Job runs; the operator's `--runtime-image` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Compute resources of the ingest container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// Pod retries (with the Job controller's exponential backoff) before the ingest fails.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
    /// Longest an ingest may run, retries included.
    #[serde(default = "default_ingest_deadline")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: i64,
    /// Host names of `url` sources fetched whatever address they resolve to (an intranet wiki).
    /// Without it, URLs that resolve to loopback, link-local (cloud metadata), private, shared or
    /// reserved addresses, or into the cluster's networks, are refused; so are redirects there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$")
        )
    )]
    pub allow_hosts: Vec<String>,
    /// Networks `url` sources may be fetched from although the rules above refuse them, for
    /// example `10.20.0.0/16`.
    #[serde(default, rename = "allowCIDRs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 64)))]
    pub allow_cidrs: Vec<String>,
}

impl Default for IngestSpec {
    fn default() -> Self {
        Self {
            image: None,
            resources: None,
            backoff_limit: default_backoff_limit(),
            active_deadline_seconds: default_ingest_deadline(),
            allow_hosts: Vec::new(),
            allow_cidrs: Vec::new(),
        }
    }
}

fn default_backoff_limit() -> i32 {
    2
}

fn default_ingest_deadline() -> i64 {
    3600
}

fn default_retain_collections() -> i32 {
    2
}

/// Exactly one vector store backend.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.qdrant) != has(self.embedded)").message("exactly one of vectorStore.qdrant or vectorStore.embedded must be set"))]
// The index's records name collections, not servers: a store or server changed under them would
// make garbage collection and deletion act on another server's collections.
#[x_kube(validation = Rule::new("has(self.qdrant) == has(oldSelf.qdrant) && (!has(self.qdrant) || self.qdrant.url == oldSelf.qdrant.url)").message("vectorStore: the store and vectorStore.qdrant.url are immutable (the index's collections live there); create another RagIndex to move"))]
pub struct VectorStoreSpec {
    /// A Qdrant server, reached over gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdrant: Option<QdrantSpec>,
    /// Qdrant's in-process engine inside each runtime pod; for small corpora and development.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedSpec>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QdrantSpec {
    /// gRPC URL of the Qdrant server, for example `http://qdrant.qdrant:6334`. Immutable: the
    /// collections the index records as its own live there.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''").message("vectorStore.qdrant.url must be an http or https URL with a host, for example http://qdrant.qdrant:6334"))]
    pub url: String,
    /// Secret key holding the Qdrant API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Collection alias readers outside ragops query; defaults to `<namespace>_<name>`. One
    /// alias on a server belongs to one RagIndex: a second one claiming it is refused
    /// (`AliasConflict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"), length(max = 200))]
    pub collection: Option<String>,
}

/// The embedded store has no settings; its data lives in the pod.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
pub struct EmbeddedSpec {}

/// Embedding model provider.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// Any OpenAI-compatible server: OpenAI, Azure, vLLM, Ollama, TEI.
    Openai,
    /// Built-in deterministic embedder that needs no network (development, tests).
    #[default]
    Local,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'openai' || has(self.model)").message("embedding.model is required when provider is openai"))]
pub struct EmbeddingSpec {
    /// `openai` (any OpenAI-compatible server) or `local`.
    pub provider: EmbeddingProvider,
    /// Model name, for example `text-embedding-3-small`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Length of the vectors the model produces.
    #[schemars(range(min = 1, max = 65536))]
    pub dimensions: i32,
    /// Base URL of the OpenAI-compatible API (ending in `/v1`); the provider default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Secret key holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Texts per embedding request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2048))]
    pub batch_size: Option<i32>,
}

/// Similarity measure between vectors.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Distance {
    #[default]
    Cosine,
    Dot,
    Euclid,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.overlapChars < self.maxChars").message("chunking.overlapChars must be smaller than chunking.maxChars"))]
pub struct ChunkingSpec {
    /// Largest chunk, in characters.
    #[serde(default = "default_max_chars")]
    #[schemars(range(min = 50, max = 100000))]
    pub max_chars: i32,
    /// Characters shared by neighbouring chunks.
    #[serde(default = "default_overlap_chars")]
    #[schemars(range(min = 0))]
    pub overlap_chars: i32,
}

impl Default for ChunkingSpec {
    fn default() -> Self {
        Self {
            max_chars: default_max_chars(),
            overlap_chars: default_overlap_chars(),
        }
    }
}

fn default_max_chars() -> i32 {
    1000
}

fn default_overlap_chars() -> i32 {
    150
}

/// One source of documents: exactly one of `configMap`, `url` or `persistentVolumeClaim`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.configMap) ? 1 : 0) + (has(self.url) ? 1 : 0) + (has(self.persistentVolumeClaim) ? 1 : 0) == 1").message("a source sets exactly one of configMap, url or persistentVolumeClaim"))]
pub struct SourceSpec {
    /// Every key of this ConfigMap is a document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapSource>,
    /// A document fetched over HTTP(S) by the ingest Job (Qdrant stores only), for example
    /// `https://example.com/handbook.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s/?#]+[^\s]*$"), length(max = 2048))]
    pub url: Option<String>,
    /// Files under a path of a PersistentVolumeClaim, mounted read-only by the ingest Job
    /// (Qdrant stores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcSource>,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
pub struct ConfigMapSource {
    /// Name of the ConfigMap in the same namespace.
    #[schemars(length(min = 1))]
    pub name: String,
}

#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PvcSource {
    /// Name of the PersistentVolumeClaim in the same namespace.
    #[schemars(length(min = 1))]
    pub claim_name: String,
    /// Directory inside the volume, absolute, without `..`.
    #[serde(default = "default_pvc_path")]
    #[schemars(regex(pattern = r"^/"), length(max = 1024))]
    #[x_kube(validation = Rule::new("!self.split('/').exists(s, s == '..')").message("persistentVolumeClaim.path must not contain '..'"))]
    pub path: String,
}

fn default_pvc_path() -> String {
    "/".into()
}

/// What happens to the collections when the RagIndex is deleted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep the collections and the alias.
    #[default]
    Retain,
    /// Drop the collections this index created and its alias (a finalizer waits for it).
    Delete,
}

/// Observed state of a RagIndex.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RagIndexStatus {
    /// `Pending`, `Indexing`, `Ready` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The collection the alias currently points at and new pipeline revisions serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_collection: Option<String>,
    /// The ingest revision last completed: a hash of the sources, embedding, chunking, distance
    /// and schedule tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Documents in the active collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<i64>,
    /// Chunks (points) in the active collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<i64>,
    /// When the active collection finished indexing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_indexed_at: Option<Time>,
    /// Digest of the sources the active collection was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_digest: Option<String>,
    /// What the active collection was built with. Pipelines embed their queries with this
    /// embedding, so an edited `spec.embedding` reaches them only with a collection built from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexed_with: Option<IndexedWith>,
    /// Collections this index created, newest first (Qdrant stores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<String>,
    /// The newest snapshot of the active collection (`spec.backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<String>,
    /// When that snapshot was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<Time>,
    /// The schedule tick the latest ingest ran for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Indexing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The settings that decide a collection's vectors.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IndexedWith {
    pub embedding: EmbeddingSpec,
    pub chunking: ChunkingSpec,
    pub distance: Distance,
}

impl IndexedWith {
    pub fn of(spec: &RagIndexSpec) -> Self {
        Self {
            embedding: spec.embedding.clone(),
            chunking: spec.chunking.clone(),
            distance: spec.distance,
        }
    }

    /// Whether `spec` would make the same vectors of the same text (credentials and batch sizes
    /// change how an ingest runs, not what it stores).
    pub fn same_vectors(&self, spec: &RagIndexSpec) -> bool {
        let (a, b) = (&self.embedding, &spec.embedding);
        a.provider == b.provider
            && a.model == b.model
            && a.dimensions == b.dimensions
            && a.endpoint == b.endpoint
            && self.chunking == spec.chunking
            && self.distance == spec.distance
    }
}
