//! Probes and metrics, open without a token: `/healthz` (the process answers), `/readyz` (the
//! store is reachable with its collection, providers are set up, not draining) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

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
