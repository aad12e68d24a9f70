//! Dense vectors from any OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure, vLLM, Ollama,
//! TEI). The key comes from `EMBEDDING_API_KEY` and is never logged.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use async_trait::async_trait;

use super::Embedder;
use crate::config::{EMBEDDING_API_KEY_ENV, EmbeddingConfig};
use crate::error::{Error, Result};
use crate::redact;

/// OpenAI's own API, used when no `endpoint` is configured.
pub const OPENAI_API: &str = "https://api.openai.com/v1";

pub struct OpenAiEmbedder {
    client: Client<OpenAIConfig>,
    model: String,
    dimensions: usize,
    /// Only OpenAI's own `text-embedding-3*` models accept a `dimensions` parameter; other
    /// servers reject it.
    send_dimensions: bool,
    /// Redacted, for [`Embedder::describe`].
    endpoint: String,
}

/// The client for an OpenAI-compatible server: `endpoint` or OpenAI's own API, key from `key_env`.
pub fn client(endpoint: Option<&str>, key_env: &str) -> Client<OpenAIConfig> {
    crate::install_crypto_provider();
    let mut config = OpenAIConfig::new().with_api_key(std::env::var(key_env).unwrap_or_default());
    if let Some(endpoint) = endpoint {
        config = config.with_api_base(endpoint.trim_end_matches('/'));
    }
    Client::with_config(config)
}

impl OpenAiEmbedder {
    pub fn new(config: &EmbeddingConfig) -> Result<Self> {
        Ok(Self {
            client: client(config.endpoint.as_deref(), EMBEDDING_API_KEY_ENV),
            model: config.model.clone(),
            dimensions: config.dimensions as usize,
            send_dimensions: config.endpoint.is_none()
                && config.model.starts_with("text-embedding-3"),
            endpoint: redact::url(config.endpoint.as_deref().unwrap_or(OPENAI_API)),
        })
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        let request = CreateEmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            dimensions: self.send_dimensions.then_some(self.dimensions as u32),
            ..Default::default()
        };
        let response = self
            .client
            .embeddings()
            .create(request)
            .await
            .map_err(|e| Error::Embedding(redact::upstream_error(e, EMBEDDING_API_KEY_ENV)))?;
        let mut data = response.data;
        if data.len() != texts.len() {
            return Err(Error::Embedding(format!(
                "asked for {} vectors, got {}",
                texts.len(),
                data.len()
            )));
        }
        data.sort_by_key(|e| e.index);
        let vectors: Vec<Vec<f32>> = data.into_iter().map(|e| e.embedding).collect();
        if let Some(v) = vectors.iter().find(|v| v.len() != self.dimensions) {
            return Err(Error::Embedding(format!(
                "model {} returned {} dimensions but embedding.dimensions is {}",
                self.model,
                v.len(),
                self.dimensions
            )));
        }
        Ok(vectors)
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn describe(&self) -> String {
        format!(
            "openai {} at {} ({} dimensions)",
            self.model, self.endpoint, self.dimensions
        )
    }
}
