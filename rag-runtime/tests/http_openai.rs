//! The OpenAI path: embeddings and chat (whole and streamed) against a small OpenAI-compatible
//! server started on loopback by the test, asserting what it was sent. Also checks that a
//! shutdown lets an in-flight answer finish.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::TestServer;
use futures::stream;
use rag_runtime::config::{
    EmbeddingConfig, EmbeddingProvider, LlmConfig, LlmProvider, RuntimeConfig,
};
use rag_runtime::embed::local::LocalEmbedder;
use rag_runtime::state::ApiKeys;
use serde_json::{Value, json};
use tokio::sync::Notify;

const ANSWER_PARTS: [&str; 2] = ["The answer", " is 42."];
const DIMENSIONS: usize = 16;
/// In the failing fixture's error body; clients must never see it.
const UPSTREAM_DETAIL: &str = "internal-upstream-detail-xyz";

/// A stand-in for an OpenAI-compatible server that records every request body.
#[derive(Clone, Default)]
struct Fixture {
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// When set, chat requests wait for `release` after announcing themselves on `arrived`.
    hold: Arc<AtomicBool>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
    /// `embeddings` or `chat`: that route answers 500 with [`UPSTREAM_DETAIL`].
    failing: Arc<Mutex<Option<&'static str>>>,
}

impl Fixture {
    fn bodies(&self, path: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn failure(&self, path: &str) -> Option<Response> {
        (*self.failing.lock().unwrap() == Some(path)).then(|| {
            let error = json!({"message": format!("{UPSTREAM_DETAIL} on gpu-7"), "type": "server"});
            let body = Json(json!({ "error": error }));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        })
    }
}

async fn embeddings(State(f): State<Fixture>, Json(body): Json<Value>) -> Response {
    f.requests
        .lock()
        .unwrap()
        .push(("embeddings".into(), body.clone()));
    if let Some(failure) = f.failure("embeddings") {
        return failure;
    }
    let embedder = LocalEmbedder::new(DIMENSIONS);
    let data: Vec<Value> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embedder.embed_one(t.as_str().unwrap())}))
        .collect();
    Json(
        json!({"object": "list", "model": body["model"], "data": data, "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
    )
    .into_response()
}

async fn chat(State(f): State<Fixture>, Json(body): Json<Value>) -> Response {
    f.requests
        .lock()
        .unwrap()
        .push(("chat".into(), body.clone()));
    if let Some(failure) = f.failure("chat") {
        return failure;
    }
    if f.hold.load(Ordering::SeqCst) {
        f.arrived.notify_one();
        f.release.notified().await;
    }
    let usage = json!({"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35});
    if body["stream"] == true {
        let chunk = |delta: Value, usage: Value| {
            let choices = if delta.is_null() {
                json!([])
            } else {
                json!([{"index": 0, "delta": delta, "finish_reason": null}])
            };
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"], "choices": choices, "usage": usage})
        };
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        events.extend(
            ANSWER_PARTS
                .iter()
                .map(|p| chunk(json!({"content": p}), Value::Null)),
        );
        events.push(chunk(Value::Null, usage));
        let events = events
            .into_iter()
            .map(|e| e.to_string())
            .chain(["[DONE]".to_string()])
            .map(|d| Ok::<_, std::convert::Infallible>(Event::default().data(d)));
        return Sse::new(stream::iter(events)).into_response();
    }
    Json(json!({
        "id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER_PARTS.concat()}, "finish_reason": "stop"}],
        "usage": usage,
    }))
    .into_response()
}

async fn start_fixture() -> (Fixture, String) {
    let fixture = Fixture::default();
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .with_state(fixture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fixture, endpoint)
}

async fn start(dir: &std::path::Path) -> (TestServer, Fixture) {
    let (fixture, endpoint) = start_fixture().await;
    let mut config = RuntimeConfig {
        embedding: EmbeddingConfig {
            provider: EmbeddingProvider::Openai,
            model: "fixture-embed".into(),
            dimensions: DIMENSIONS as u32,
            endpoint: Some(endpoint.clone()),
            batch_size: 2,
        },
        llm: LlmConfig {
            provider: LlmProvider::Openai,
            model: "fixture-chat".into(),
            endpoint: Some(endpoint),
            temperature: Some(0.25),
            max_tokens: Some(64),
        },
        ..common::embedded_config(dir)
    };
    config.server.allow_writes = true;
    let server = TestServer::start(config, ApiKeys::default(), &[]).await;
    let docs = json!({"documents": [
        {"id": "zebra.md", "text": "Zebras have black and white stripes."},
        {"id": "lion.md", "text": "Lions live in prides on the savanna."},
        {"id": "owl.md", "text": "Owls hunt at night and fly silently."},
    ]});
    let added = server.post_json("/v1/documents", docs).await;
    assert_eq!(added.status(), 200, "{:?}", added.text().await);
    (server, fixture)
}

#[tokio::test]
async fn documents_and_queries_use_the_openai_compatible_server() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fixture) = start(dir.path()).await;

    // Three chunks in batches of two: two embedding requests carrying every text once.
    let batches = fixture.bodies("embeddings");
    assert_eq!(batches.len(), 2);
    let mut inputs: Vec<String> = batches
        .iter()
        .flat_map(|b| b["input"].as_array().unwrap().clone())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    inputs.sort();
    assert_eq!(inputs[2], "Zebras have black and white stripes.");
    assert_eq!(inputs.len(), 3);
    assert!(
        batches
            .iter()
            .all(|b| b["model"] == "fixture-embed" && b.get("dimensions").is_none())
    );

    let response = server
        .post_json(
            "/v1/query",
            json!({"query": "what stripes do zebras have", "topK": 2}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["answer"], "The answer is 42.");
    assert_eq!(
        body["usage"],
        json!({"promptTokens": 30, "completionTokens": 5, "totalTokens": 35})
    );
    assert_eq!(body["sources"][0]["documentId"], "zebra.md");

    let question = fixture.bodies("embeddings").last().unwrap().clone();
    assert_eq!(question["input"], json!(["what stripes do zebras have"]));
    let chat = fixture.bodies("chat").pop().unwrap();
    assert_eq!(chat["model"], "fixture-chat");
    assert_eq!(chat["temperature"], 0.25);
    assert_eq!(chat["max_completion_tokens"], 64);
    assert!(chat.get("stream").is_none_or(|s| s == false));
    let messages = chat["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user");
    let content = last["content"].as_str().unwrap();
    assert!(
        content.contains("[1] (zebra.md) Zebras have black and white stripes."),
        "{content}"
    );
    assert!(
        content.ends_with("Question: what stripes do zebras have"),
        "{content}"
    );
}

#[tokio::test]
async fn chat_completions_answer_whole_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fixture) = start(dir.path()).await;
    let conversation = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "Where do lions live?"}]},
    ]);

    let whole = server
        .post_json(
            "/v1/chat/completions",
            json!({"model": "any", "messages": conversation}),
        )
        .await;
    assert_eq!(whole.status(), 200);
    let body: Value = whole.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The answer is 42."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 35);
    assert_eq!(body["sources"][0]["documentId"], "lion.md");

    let streamed = server
        .post_json(
            "/v1/chat/completions",
            json!({"messages": conversation, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(streamed.status(), 200);
    assert!(
        streamed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = streamed.text().await.unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(content, "The answer is 42.");
    assert_eq!(chunks[0]["sources"][0]["documentId"], "lion.md");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 30);

    // Both calls sent the conversation through, with the retrieved context on the last turn.
    let calls = fixture.bodies("chat");
    assert_eq!(calls.len(), 2);
    let sent = &calls[1];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(sent["messages"][0]["content"], "Be brief.");
    let last = sent["messages"][3]["content"].as_str().unwrap();
    assert!(
        last.contains("Lions live in prides") && last.ends_with("Question: Where do lions live?"),
        "{last}"
    );

    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"rag_llm_tokens_total{kind="prompt"} 60"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rag_llm_tokens_total{kind="completion"} 10"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, fixture) = start(dir.path()).await;
    fixture.hold.store(true, Ordering::SeqCst);
    let request = server
        .client
        .post(server.url("/v1/query"))
        .json(&json!({"query": "owls"}))
        .send();
    let in_flight = tokio::spawn(request);
    fixture.arrived.notified().await;
    server.begin_shutdown();
    fixture.release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["answer"], "The answer is 42.");
    server.task.take().unwrap().await.unwrap().unwrap();
    assert!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn slow_answers_time_out_with_a_json_504() {
    let dir = tempfile::tempdir().unwrap();
    let (fixture, endpoint) = start_fixture().await;
    let mut config = common::embedded_config(dir.path());
    config.server.request_timeout_seconds = 1;
    config.llm = LlmConfig {
        provider: LlmProvider::Openai,
        model: "fixture-chat".into(),
        endpoint: Some(endpoint),
        ..Default::default()
    };
    let server = TestServer::start(config, ApiKeys::default(), &[common::corpus()]).await;
    fixture.hold.store(true, Ordering::SeqCst);
    let response = server
        .post_json("/v1/query", json!({"query": "rollout"}))
        .await;
    let (status, code, _) = common::error_body(response).await;
    assert_eq!((status, code.as_str()), (504, "timeout"));
    fixture.release.notify_one();
}

#[tokio::test]
async fn provider_errors_reach_clients_without_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fixture) = start(dir.path()).await;
    let question = json!({"query": "owls"});
    let user = json!([{"role": "user", "content": "owls"}]);
    let chat = json!({"messages": user});
    let streamed = json!({"messages": user, "stream": true});
    let documents = json!({"documents": [{"id": "new.md", "text": "New text."}]});
    for (failing, path, body, code) in [
        ("chat", "/v1/query", &question, "llm_failed"),
        ("chat", "/v1/chat/completions", &chat, "llm_failed"),
        ("chat", "/v1/chat/completions", &streamed, "llm_failed"),
        ("embeddings", "/v1/query", &question, "embedding_failed"),
        ("embeddings", "/v1/documents", &documents, "ingest_failed"),
    ] {
        *fixture.failing.lock().unwrap() = Some(failing);
        let response = server.post_json(path, body.clone()).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(!text.contains(UPSTREAM_DETAIL), "{path}: {text}");
        let error: Value = serde_json::from_str(&text).expect("a JSON error body");
        assert_eq!(
            (status.as_u16(), &error["error"]["code"]),
            (502, &json!(code))
        );
    }
    // One failed embedder call per failing question or document batch; the store never failed.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("\nrag_embedding_errors_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nrag_vector_store_errors_total 0\n"),
        "{metrics}"
    );
}
