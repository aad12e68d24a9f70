//! Probes and metrics, open without a token: `/healthz` (the process answers), `/readyz` (the
//! store is reachable with its collection, providers are set up, not draining) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::config::{
    EMBEDDING_API_KEY_ENV, EmbeddingProvider, LLM_API_KEY_ENV, LlmProvider, RuntimeConfig,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Why the providers cannot work: OpenAI's own API (no `endpoint`) needs a key; self-hosted
/// OpenAI-compatible servers often do not.
fn provider_problem(config: &RuntimeConfig) -> Option<String> {
    provider_problem_with(config, |name| std::env::var(name).ok())
}

/// [`provider_problem`] with the environment given, so tests do not depend on the caller's.
fn provider_problem_with(
    config: &RuntimeConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let missing = |name: &str| env(name).is_none_or(|v| v.is_empty());
    if config.embedding.provider == EmbeddingProvider::Openai
        && config.embedding.endpoint.is_none()
        && missing(EMBEDDING_API_KEY_ENV)
    {
        return Some(format!(
            "embedding provider openai needs {EMBEDDING_API_KEY_ENV}"
        ));
    }
    if config.llm.provider == LlmProvider::Openai
        && config.llm.endpoint.is_none()
        && missing(LLM_API_KEY_ENV)
    {
        return Some(format!("LLM provider openai needs {LLM_API_KEY_ENV}"));
    }
    None
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let unavailable =
        |message: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message);
    if state.is_draining() {
        return Err(unavailable("shutting down".into()));
    }
    let rag = &state.rag;
    if let Some(problem) = provider_problem(&rag.config) {
        return Err(unavailable(problem));
    }
    rag.store
        .ready()
        .await
        .map_err(|e| unavailable(format!("collection {:?}: {e}", rag.config.collection.0)))?;
    Ok(Json(json!({
        "status": "ready",
        "collection": rag.config.collection.0,
        "embedder": rag.embedder.describe(),
        "generator": rag.generator.describe(),
        "auth": state.api_keys.enabled(),
    })))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.rag.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EmbeddedConfig, VectorStoreConfig};
    use crate::rag::Rag;
    use crate::state::ApiKeys;

    #[tokio::test]
    async fn readyz_shows_endpoints_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Some("https://user:secret@llm.example:8443/v1?key=secret".to_string());
        let mut config = RuntimeConfig {
            vector_store: VectorStoreConfig::Embedded(EmbeddedConfig {
                data_dir: dir.path().into(),
            }),
            ..Default::default()
        };
        config.embedding.provider = EmbeddingProvider::Openai;
        config.embedding.endpoint = endpoint.clone();
        config.llm.provider = LlmProvider::Openai;
        config.llm.endpoint = endpoint;
        config.llm.model = "chat".into();
        let rag = Rag::from_config(config).await.unwrap();
        let dimensions = rag.embedder.dimensions();
        rag.store.ensure_collection(dimensions).await.unwrap();
        let state = AppState::new(rag, ApiKeys::default());
        let body = readyz(State(state)).await.unwrap().0.to_string();
        assert!(body.contains("at https://llm.example:8443/v1"), "{body}");
        assert!(!body.contains("secret"), "{body}");
    }

    #[test]
    fn openai_without_an_endpoint_needs_a_key() {
        let unset = |_: &str| None;
        let with_key = |name: &str| (name == LLM_API_KEY_ENV).then(|| "k".to_string());
        let mut config = RuntimeConfig::default();
        assert_eq!(provider_problem_with(&config, unset), None);
        config.llm.provider = LlmProvider::Openai;
        config.llm.endpoint = Some("http://vllm:8000/v1".into());
        assert_eq!(provider_problem_with(&config, unset), None);
        config.llm.endpoint = None;
        // OpenAI's own API needs the key, whatever the environment of the test run.
        let problem = provider_problem_with(&config, unset).unwrap();
        assert!(problem.contains(LLM_API_KEY_ENV), "{problem}");
        assert_eq!(provider_problem_with(&config, with_key), None);
    }
}
