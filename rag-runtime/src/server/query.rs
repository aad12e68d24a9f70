//! `POST /v1/query` (question → answer with cited sources and usage) and the document routes
//! (`POST /v1/documents`, `DELETE /v1/documents/{id}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::json::ApiJson;
use crate::error::{ApiError, Error};
use crate::generate::Usage;
use crate::ingest::{self, Progress};
use crate::rag::Document;
use crate::state::AppState;
use crate::store::{Filter, Hit};

/// Documents stored by one request are embedded this many batches at a time.
const API_INGEST_CONCURRENCY: usize = 4;
pub const MAX_TOP_K: u32 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest {
    pub query: String,
    #[serde(alias = "top_k")]
    pub top_k: Option<u32>,
    pub filter: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub document_id: String,
    pub chunk: u32,
    pub score: f32,
    pub text: String,
    pub metadata: Map<String, Value>,
}

impl From<Hit> for Source {
    fn from(h: Hit) -> Self {
        Self {
            document_id: h.document_id,
            chunk: h.chunk,
            score: h.score,
            text: h.text,
            metadata: h.metadata,
        }
    }
}

#[derive(Serialize)]
pub struct QueryResponse {
    pub answer: String,
    pub sources: Vec<Source>,
    pub usage: Usage,
}

/// The `topK` to use: the request's, else the config's, bounded.
pub fn top_k(state: &AppState, requested: Option<u32>) -> Result<usize, ApiError> {
    let k = requested.unwrap_or(state.rag.config.retrieval.top_k);
    if !(1..=MAX_TOP_K).contains(&k) {
        return Err(ApiError::bad_request(format!(
            "topK must be between 1 and {MAX_TOP_K}"
        )));
    }
    Ok(k as usize)
}

pub async fn query(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<QueryRequest>,
) -> Result<Json<QueryResponse>, ApiError> {
    if req.query.trim().is_empty() {
        return Err(ApiError::bad_request("query must not be empty"));
    }
    let k = top_k(&state, req.top_k)?;
    let filter = Filter::from_json(req.filter.as_ref())?;
    let answer = state.rag.answer(&req.query, k, filter).await?;
    Ok(Json(QueryResponse {
        answer: answer.answer,
        sources: answer.sources.into_iter().map(Source::from).collect(),
        usage: answer.usage,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsRequest {
    pub documents: Vec<DocumentInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Serialize)]
pub struct DocumentsResponse {
    pub documents: usize,
    pub chunks: usize,
}

pub async fn add_documents(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<DocumentsRequest>,
) -> Result<Json<DocumentsResponse>, ApiError> {
    if req.documents.is_empty() {
        return Err(ApiError::bad_request("documents must not be empty"));
    }
    if let Some(d) = req.documents.iter().find(|d| d.id.trim().is_empty()) {
        return Err(ApiError::bad_request(format!(
            "every document needs an id (text starts {:?})",
            d.text.chars().take(30).collect::<String>()
        )));
    }
    let rag = Arc::clone(&state.rag);
    rag.store
        .ensure_collection(rag.embedder.dimensions())
        .await?;
    let documents: Vec<Document> = req
        .documents
        .into_iter()
        .map(|d| Document {
            id: d.id,
            text: d.text,
            metadata: d.metadata,
        })
        .collect();
    let report = ingest::ingest(rag, documents, API_INGEST_CONCURRENCY, |_| Progress::Silent).await;
    if let Some(first) = report.failed.keys().next() {
        // The reasons are provider or store errors: for the log, not the client.
        for (id, reason) in &report.failed {
            tracing::warn!(document = %id, %reason, "document not stored");
        }
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "ingest_failed",
            format!(
                "{} of the documents could not be stored (first {first:?}); the server log has why",
                report.failed.len()
            ),
        ));
    }
    Ok(Json(DocumentsResponse {
        documents: report.documents,
        chunks: report.chunks,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResponse {
    pub document_id: String,
    pub deleted_chunks: u64,
}

pub async fn delete_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let deleted = state.rag.store.delete_document(&id, 0).await?;
    if deleted == 0 {
        return Err(Error::NotFound(format!("document {id:?}")).into());
    }
    Ok(Json(DeleteResponse {
        document_id: id,
        deleted_chunks: deleted,
    }))
}
