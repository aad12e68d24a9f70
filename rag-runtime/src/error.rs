//! Errors: what a backend can fail with ([`Error`]) and how every 4xx/5xx reaches a client
//! ([`ApiError`], always `{"error": {"code", "message"}}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A failure inside the runtime, by the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("vector store: {0}")]
    Store(String),
    #[error("embedding provider: {0}")]
    Embedding(String),
    #[error("LLM provider: {0}")]
    Llm(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Error {
    /// Short, stable name of the failing part; used as a metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::NotFound(_) => "not_found",
            Self::Store(_) => "store",
            Self::Embedding(_) => "embedding",
            Self::Llm(_) => "llm",
            Self::Config(_) => "config",
            Self::Io { .. } => "io",
        }
    }

    pub fn store(err: impl std::fmt::Display) -> Self {
        Self::Store(err.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error response; the body is `{"error": {"code", "message"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// The error a bare status maps to when nothing more specific is known.
    pub fn from_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_client_error() => "client_error",
            _ => "internal",
        };
        let message = status.canonical_reason().unwrap_or("error").to_string();
        Self::new(status, code, message)
    }
}

impl From<Error> for ApiError {
    /// Server errors are logged in full; a provider's own error text stays in the log, since it
    /// can describe the provider's internals, and the client gets a fixed message.
    fn from(err: Error) -> Self {
        let (status, code) = match &err {
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "vector_store_unavailable"),
            Error::Embedding(_) => (StatusCode::BAD_GATEWAY, "embedding_failed"),
            Error::Llm(_) => (StatusCode::BAD_GATEWAY, "llm_failed"),
            Error::Config(_) | Error::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::warn!(category = err.category(), error = %err, "request failed");
        }
        let message = match err {
            Error::Embedding(_) => "the embedding provider failed".into(),
            Error::Llm(_) => "the language model provider failed".into(),
            other => other.to_string(),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
