//! Probes and metrics, open without a token: `/healthz` (the process answers), `/readyz` (from
//! local state: providers set up, the store reached once since start, not draining),
//! `/readyz/store` (the store reachable with its collection, now) and `/metrics`.
//!
//! `/readyz` does not follow the store after the first success: a Qdrant blip would otherwise
//! take every pod of every pipeline out of its Service at once, which serves nobody. The store's
//! health is `rag_vector_store_up` (kept fresh by [`watch_store`]) and `/readyz/store`, which
//! the operator's rollout gate checks before it moves traffic to a new colour. The route
//! follows the Kubernetes API server's `/readyz/<check>` for one check alone.

use std::sync::atomic::Ordering;
use std::time::Duration;

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

fn unavailable(message: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.is_draining() {
        return Err(unavailable("shutting down".into()));
    }
    let rag = &state.rag;
    if let Some(problem) = provider_problem(&rag.config) {
        return Err(unavailable(problem));
    }
    // Until the store has answered once: a new pod gets no traffic before it can serve.
    if !state.store_reached.load(Ordering::Relaxed) {
        store_ready(&state).await?;
    }
    Ok(Json(json!({
        "status": "ready",
        "collection": rag.config.collection.0,
        "store": if rag.metrics.vector_store_up.get() == 1 { "up" } else { "down" },
        "embedder": rag.embedder.describe(),
        "generator": rag.generator.describe(),
        "auth": state.api_keys.enabled(),
    })))
}

/// `/readyz/store`: the store reachable and the collection present, checked now.
pub async fn readyz_store(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    store_ready(&state).await?;
    Ok(Json(json!({
        "status": "ready",
        "collection": state.rag.config.collection.0,
    })))
}

/// Checks the store (which sets `rag_vector_store_up`), remembering that it was reached.
async fn store_ready(state: &AppState) -> Result<(), ApiError> {
    let rag = &state.rag;
    rag.store
        .ready()
        .await
        .map_err(|e| unavailable(format!("collection {:?}: {e}", rag.config.collection.0)))?;
    state.store_reached.store(true, Ordering::Relaxed);
    Ok(())
}

/// Checks the store every `period` for as long as the process serves, so `rag_vector_store_up`
/// says what the store's state is even when nobody calls `/readyz/store`.
pub async fn watch_store(state: AppState, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = store_ready(&state).await {
            tracing::debug!(error = %err.message, "vector store check failed");
        }
    }
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
    use crate::config::{EmbeddedConfig, QdrantConfig, VectorStoreConfig};
    use crate::rag::Rag;
    use crate::state::ApiKeys;
    use crate::store::Filter;

    /// A loopback gRPC url on which nothing listens (the port was just free).
    fn closed_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn an_unreachable_store_is_down_and_its_failed_calls_are_counted() {
        crate::install_crypto_provider();
        let config = RuntimeConfig {
            vector_store: VectorStoreConfig::Qdrant(QdrantConfig { url: closed_url() }),
            ..Default::default()
        };
        let state = AppState::new(Rag::from_config(config).await.unwrap(), ApiKeys::default());
        let metrics = state.rag.metrics.clone();
        metrics.vector_store_up.set(1);
        let refused = readyz(State(state.clone())).await.unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(metrics.vector_store_up.get(), 0);
        assert_eq!(metrics.vector_store_errors.get(), 1);
        let answer = state.rag.answer("anything", 3, Filter::default()).await;
        assert!(
            matches!(answer, Err(crate::error::Error::Store(_))),
            "{answer:?}"
        );
        assert_eq!(metrics.vector_store_errors.get(), 2);
        // The local embedder did its part; only the store failed.
        assert_eq!(metrics.embedding_errors.get(), 0);
        let text = metrics.render();
        assert!(text.contains("\nrag_vector_store_up 0\n"), "{text}");
        assert!(
            text.contains("\nrag_vector_store_errors_total 2\n"),
            "{text}"
        );
    }

    /// A store that goes away after the pod was ready (a Qdrant restart) leaves the pod in its
    /// Service; the store's own check and the metric say it is down.
    #[tokio::test]
    async fn once_the_store_was_reached_readyz_no_longer_follows_it() {
        crate::install_crypto_provider();
        let config = RuntimeConfig {
            vector_store: VectorStoreConfig::Qdrant(QdrantConfig { url: closed_url() }),
            ..Default::default()
        };
        let state = AppState::new(Rag::from_config(config).await.unwrap(), ApiKeys::default());
        // Never reached: not ready.
        let refused = readyz(State(state.clone())).await.unwrap_err();
        assert!(
            refused.message.starts_with("collection \"documents\""),
            "{}",
            refused.message
        );
        // Reached once (as if the store blipped since): ready, from local state.
        state.store_reached.store(true, Ordering::Relaxed);
        let ready = readyz(State(state.clone())).await.unwrap().0;
        assert_eq!(
            (&ready["status"], &ready["store"]),
            (&json!("ready"), &json!("down"))
        );
        let store = readyz_store(State(state.clone())).await.unwrap_err();
        assert_eq!(store.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(state.rag.metrics.vector_store_up.get(), 0);
        // The background check keeps the metric current without any request.
        state.rag.metrics.vector_store_up.set(1);
        let watch = tokio::spawn(watch_store(state.clone(), Duration::from_millis(10)));
        let metrics = state.rag.metrics.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while metrics.vector_store_up.get() != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the metric never went down"
            );
            tokio::task::yield_now().await;
        }
        watch.abort();
    }

    #[tokio::test]
    async fn a_reachable_store_is_up_and_counts_no_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = RuntimeConfig {
            vector_store: VectorStoreConfig::Embedded(EmbeddedConfig {
                data_dir: dir.path().into(),
            }),
            ..Default::default()
        };
        let rag = Rag::from_config(config).await.unwrap();
        rag.store
            .ensure_collection(rag.embedder.dimensions())
            .await
            .unwrap();
        let state = AppState::new(rag, ApiKeys::default());
        let ready = readyz(State(state.clone())).await.unwrap().0;
        assert_eq!(ready["status"], "ready");
        state
            .rag
            .answer("rollout", 3, Filter::default())
            .await
            .unwrap();
        let metrics = &state.rag.metrics;
        assert_eq!(metrics.vector_store_up.get(), 1);
        assert_eq!(metrics.vector_store_errors.get(), 0);
        assert_eq!(metrics.embedding_errors.get(), 0);
    }

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
