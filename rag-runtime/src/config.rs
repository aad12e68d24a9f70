//! The one schema of the runtime's YAML configuration.
//!
//! The operator renders it into the `<pipeline>-config` ConfigMap; `rag-runtime serve` and
//! `rag-runtime ingest` read it. Every field has a default, so an empty file (or no file at all)
//! is the embedded development setup: embedded store under `./data`, BM25 plus the local
//! embedder, extractive answers. Secrets never live here: they arrive through the environment
//! variables named by the `*_ENV` constants.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bearer tokens accepted by the service, comma separated. Unset means no auth.
pub const API_KEYS_ENV: &str = "RAG_API_KEYS";
/// A file of bearer tokens, one per line (e.g. a mounted Secret); added to `RAG_API_KEYS`.
pub const API_KEYS_FILE_ENV: &str = "RAG_API_KEYS_FILE";
/// API key for an `openai` embedding provider.
pub const EMBEDDING_API_KEY_ENV: &str = "EMBEDDING_API_KEY";
/// API key for an `openai` LLM provider.
pub const LLM_API_KEY_ENV: &str = "LLM_API_KEY";
/// API key for a Qdrant server.
pub const QDRANT_API_KEY_ENV: &str = "QDRANT_API_KEY";

/// The whole runtime configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub server: ServerConfig,
    pub vector_store: VectorStoreConfig,
    /// Name of the collection (with a Qdrant server: the alias) queries read from.
    pub collection: Collection,
    pub distance: Distance,
    pub embedding: EmbeddingConfig,
    pub chunking: ChunkingConfig,
    pub retrieval: RetrievalConfig,
    pub llm: LlmConfig,
    pub prompt: PromptConfig,
    // Left out when empty (and `allowWrites` when off), so configs rendered before these
    // settings existed keep their text, and their hash: an operator upgrade rolls nothing out.
    #[serde(skip_serializing_if = "UrlSourcesConfig::is_empty")]
    pub url_sources: UrlSourcesConfig,
}

/// Which addresses `ingest` may fetch URL sources from. Loopback, link-local (cloud metadata),
/// private, shared (CGNAT), multicast, reserved addresses and `denyCIDRs` are refused unless
/// `allowHosts` or `allowCIDRs` lets them through; checked on the resolved addresses and on
/// every redirect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UrlSourcesConfig {
    /// Host names (exactly as in the URL) fetched whatever they resolve to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_hosts: Vec<String>,
    /// Networks fetched although a rule denies them, e.g. an intranet's `10.20.0.0/16`.
    #[serde(rename = "allowCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Networks refused besides the built-in rules: the cluster's pod and service ranges.
    #[serde(rename = "denyCIDRs", skip_serializing_if = "Vec::is_empty")]
    pub deny_cidrs: Vec<ipnet::IpNet>,
}

impl UrlSourcesConfig {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// A collection name; its own type so its default is spelled once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct Collection(pub String);

impl Default for Collection {
    fn default() -> Self {
        Self("documents".into())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address `serve` listens on.
    pub listen: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Per-request timeout for the query and chat routes.
    pub request_timeout_seconds: u64,
    /// Per-client rate limit; none when absent.
    pub rate_limit: Option<RateLimitConfig>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Allow cross-origin requests from any origin (off by default).
    pub cors: bool,
    /// Serve `POST /v1/documents` and `DELETE /v1/documents/{id}`. Off by default: an index
    /// the operator fills is immutable, and a write no ingest sees is never repaired.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_writes: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout_seconds: 60,
            rate_limit: None,
            shutdown_grace_seconds: 25,
            cors: false,
            allow_writes: false,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_second: u32,
    pub burst: u32,
}

/// Where vectors live: exactly one backend.
///
/// Written as a map with one key (`vectorStore: {qdrant: {url: ...}}`), the way the RagIndex spec
/// spells it; serde_yaml's own enum form would need YAML tags (`!qdrant`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "VectorStoreMap", into = "VectorStoreMap")]
pub enum VectorStoreConfig {
    Qdrant(QdrantConfig),
    Embedded(EmbeddedConfig),
}

/// The on-disk form of [`VectorStoreConfig`].
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VectorStoreMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qdrant: Option<QdrantConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embedded: Option<EmbeddedConfig>,
}

impl TryFrom<VectorStoreMap> for VectorStoreConfig {
    type Error = String;

    fn try_from(map: VectorStoreMap) -> Result<Self, String> {
        match (map.qdrant, map.embedded) {
            (Some(q), None) => Ok(Self::Qdrant(q)),
            (None, Some(e)) => Ok(Self::Embedded(e)),
            _ => Err("exactly one of `qdrant` or `embedded` must be set".into()),
        }
    }
}

impl From<VectorStoreConfig> for VectorStoreMap {
    fn from(config: VectorStoreConfig) -> Self {
        match config {
            VectorStoreConfig::Qdrant(q) => Self {
                qdrant: Some(q),
                ..Default::default()
            },
            VectorStoreConfig::Embedded(e) => Self {
                embedded: Some(e),
                ..Default::default()
            },
        }
    }
}

impl Default for VectorStoreConfig {
    fn default() -> Self {
        Self::Embedded(EmbeddedConfig::default())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QdrantConfig {
    /// gRPC URL of the Qdrant server, e.g. `http://qdrant:6334`.
    pub url: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Directory of the in-process store; `--data-dir` overrides it.
    pub data_dir: PathBuf,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Distance {
    #[default]
    Cosine,
    Dot,
    Euclid,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// Any OpenAI-compatible embeddings endpoint.
    Openai,
    /// The built-in deterministic embedder: no network, no model.
    #[default]
    Local,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    pub model: String,
    pub dimensions: u32,
    /// Base URL of an OpenAI-compatible server (`.../v1`); the provider's default when absent.
    pub endpoint: Option<String>,
    pub batch_size: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Local,
            model: "local-hash".into(),
            dimensions: 256,
            endpoint: None,
            batch_size: 64,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ChunkingConfig {
    pub max_chars: usize,
    pub overlap_chars: usize,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self {
            max_chars: 1000,
            overlap_chars: 150,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetrievalConfig {
    pub top_k: u32,
    /// Sources scoring below this are dropped.
    pub score_threshold: Option<f32>,
    /// Fuse BM25 sparse results with dense results (reciprocal rank fusion).
    pub hybrid: bool,
    /// Breadth of the approximate dense search: how many candidates the graph walk keeps.
    /// Higher finds more of the true nearest chunks in large collections, and costs time.
    pub search_ef: u32,
}

pub const MAX_SEARCH_EF: u32 = 4096;

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            top_k: 5,
            score_threshold: None,
            hybrid: true,
            search_ef: 64,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    /// Any OpenAI-compatible chat completions endpoint.
    Openai,
    /// Answer with the retrieved passages; no model, no network.
    #[default]
    Extractive,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LlmConfig {
    pub provider: LlmProvider,
    pub model: String,
    pub endpoint: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PromptConfig {
    pub system: Option<String>,
    /// Template of the user message; `{context}` and `{question}` are replaced.
    pub template: Option<String>,
}

/// A configuration that cannot be used, naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl RuntimeConfig {
    /// Parses and validates YAML.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        // An empty document is `null` to serde_yaml; treat it as "all defaults".
        let config: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml::from_str(text)?
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("the config is always serialisable")
    }

    /// Rules the types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.into(),
            })
        };
        if self.collection.0.is_empty() {
            return invalid("collection", "must not be empty");
        }
        if self.embedding.dimensions == 0 {
            return invalid("embedding.dimensions", "must be at least 1");
        }
        if self.embedding.batch_size == 0 {
            return invalid("embedding.batchSize", "must be at least 1");
        }
        if self.embedding.provider == EmbeddingProvider::Openai && self.embedding.model.is_empty() {
            return invalid("embedding.model", "is required for provider openai");
        }
        if self.chunking.max_chars == 0 {
            return invalid("chunking.maxChars", "must be at least 1");
        }
        if self.chunking.overlap_chars >= self.chunking.max_chars {
            return invalid(
                "chunking.overlapChars",
                "must be smaller than chunking.maxChars",
            );
        }
        if !(1..=100).contains(&self.retrieval.top_k) {
            return invalid("retrieval.topK", "must be between 1 and 100");
        }
        if !(1..=MAX_SEARCH_EF).contains(&self.retrieval.search_ef) {
            return invalid(
                "retrieval.searchEf",
                &format!("must be between 1 and {MAX_SEARCH_EF}"),
            );
        }
        if self.llm.provider == LlmProvider::Openai && self.llm.model.is_empty() {
            return invalid("llm.model", "is required for provider openai");
        }
        if let VectorStoreConfig::Qdrant(q) = &self.vector_store
            && q.url.is_empty()
        {
            return invalid("vectorStore.qdrant.url", "must not be empty");
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
