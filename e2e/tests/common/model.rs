//! The model server pipelines answer through in the monitoring scenarios: an OpenAI-compatible
//! endpoint on loopback that answers, or fails with 503 while its switch is set (so a test can
//! make a revision go bad at the moment it chooses).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

/// Starts the server; it answers 503 while `failing` is set.
pub async fn model_server(failing: Arc<AtomicBool>) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let chat = move |axum::Json(body): axum::Json<Value>| {
        let failing = failing.clone();
        async move {
            if failing.load(Ordering::SeqCst) {
                return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
            }
            axum::Json(json!({
                "id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": "Blue-green moves traffic by patching the Service selector." }, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40 }
            }))
            .into_response()
        }
    };
    let app = axum::Router::new().route("/v1/chat/completions", post(chat));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// A server that always answers, or always fails.
pub async fn fixed_model_server(failing: bool) -> Result<SocketAddr> {
    model_server(Arc::new(AtomicBool::new(failing))).await
}

/// The `spec.llm` of a pipeline answering through the server at `model`.
pub fn llm(model: SocketAddr) -> Value {
    json!({ "llm": { "provider": "openai", "model": "m", "endpoint": format!("http://{model}/v1") } })
}
