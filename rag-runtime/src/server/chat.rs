//! `POST /v1/chat/completions`, OpenAI-compatible: the last user message drives retrieval, the
//! passages found are added to the prompt, and the answer comes back whole or as server-sent
//! events (`stream: true`). Responses carry the cited passages in an extra `sources` field.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::json::ApiJson;
use super::query::{Source, top_k};
use crate::error::ApiError;
use crate::generate::{Message, Role, StreamEvent, Usage};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::Filter;

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Extension: how many passages to retrieve (the config's `retrieval.topK` otherwise).
    #[serde(default, alias = "topK")]
    pub top_k: Option<u32>,
    /// Extension: restrict retrieval, as in `/v1/query`.
    #[serde(default)]
    pub filter: Option<Value>,
}

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Deserialize)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: a string or OpenAI's list of parts (only text parts are read).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Splits a conversation into the turns before the last user message and that message.
fn conversation(messages: &[ChatMessage]) -> Result<(Vec<Message>, String), ApiError> {
    let last_user = messages
        .iter()
        .rposition(|m| m.role == "user")
        .ok_or_else(|| ApiError::bad_request("messages must contain a user message"))?;
    let mut history = Vec::with_capacity(last_user);
    for m in &messages[..last_user] {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            // Tool results and the like carry nothing retrieval needs.
            "tool" | "function" => continue,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown message role {other:?}"
                )));
            }
        };
        history.push(Message::new(
            role,
            m.content.as_ref().map(Content::text).unwrap_or_default(),
        ));
    }
    let question = messages[last_user]
        .content
        .as_ref()
        .map(Content::text)
        .unwrap_or_default();
    if question.trim().is_empty() {
        return Err(ApiError::bad_request("the last user message is empty"));
    }
    Ok((history, question))
}

#[derive(Serialize)]
struct OpenAiUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<Usage> for OpenAiUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

fn completion_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "chatcmpl-{nanos:x}{:04x}",
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let (history, question) = conversation(&req.messages)?;
    let k = top_k(&state, req.top_k)?;
    let filter = Filter::from_json(req.filter.as_ref())?;
    let rag = &state.rag;
    let passages = rag.retrieve(&question, k, filter).await?;
    let messages = rag.prompt(&history, &question, &passages);
    let model = req
        .model
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| rag.generator.model().to_string());
    let sources: Vec<Source> = passages.iter().cloned().map(Source::from).collect();
    let id = completion_id();
    let created = now();

    if !req.stream {
        let started = Instant::now();
        let generation = rag.generator.generate(&messages, &passages).await?;
        Metrics::observe(&rag.metrics.llm_duration, started.elapsed());
        rag.metrics.record_tokens(generation.usage);
        return Ok(Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": generation.text},
                "finish_reason": "stop",
            }],
            "usage": OpenAiUsage::from(generation.usage),
            "sources": sources,
        }))
        .into_response());
    }

    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    let started = Instant::now();
    let events = rag.generator.stream(messages, passages).await?;
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |delta: Value, finish: Option<&str>| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })
        }
    };
    let mut first = chunk(json!({"role": "assistant", "content": ""}), None);
    first["sources"] = serde_json::to_value(&sources).unwrap_or_default();
    let metrics = rag.metrics.clone();
    let mut usage = Usage::default();
    let body = events
        .map(Some)
        .chain(stream::iter([None]))
        .flat_map(move |event| {
            let out: Vec<Value> = match event {
                Some(Ok(StreamEvent::Delta(text))) => vec![chunk(json!({"content": text}), None)],
                Some(Ok(StreamEvent::Usage(u))) => {
                    usage = u;
                    vec![]
                }
                Some(Err(err)) => {
                    let err = ApiError::from(err);
                    vec![json!({"error": {"code": err.code, "message": err.message}})]
                }
                None => {
                    Metrics::observe(&metrics.llm_duration, started.elapsed());
                    metrics.record_tokens(usage);
                    let mut last = vec![chunk(json!({}), Some("stop"))];
                    if include_usage {
                        let mut u = chunk(json!({}), None);
                        u["choices"] = json!([]);
                        u["usage"] =
                            serde_json::to_value(OpenAiUsage::from(usage)).unwrap_or_default();
                        last.push(u);
                    }
                    last
                }
            };
            stream::iter(out)
        });
    let events = stream::iter([first])
        .chain(body)
        .map(|v| Ok::<_, Infallible>(Event::default().data(v.to_string())))
        .chain(stream::iter([Ok(Event::default().data("[DONE]"))]));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
