//! The runtime over real HTTP on loopback with the embedded store and the local embedder:
//! retrieval quality on the sample corpus, documents, auth, limits and error shapes.

mod common;

use common::{TestServer, error_body};
use rag_runtime::config::{RateLimitConfig, RuntimeConfig};
use rag_runtime::state::ApiKeys;
use serde_json::{Value, json};

async fn top_source(server: &TestServer, query: &str) -> Value {
    let response = server
        .post_json("/v1/query", json!({"query": query, "topK": 3}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["sources"][0].clone()
}

#[tokio::test]
async fn questions_rank_the_right_document_first() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    for (question, expected) in [
        (
            "How does traffic switch to the new colour during a blue-green rollout?",
            "guides/blue-green.md",
        ),
        (
            "What does a client get when it exceeds its requests-per-second quota?",
            "guides/security.md",
        ),
        (
            "Which Prometheus metrics are exported and how are alerts raised?",
            "guides/observability.md",
        ),
        (
            "Why does running ingest twice not duplicate points?",
            "guides/indexing.md",
        ),
        ("Which vector stores are supported?", "faq.txt"),
    ] {
        let top = top_source(&server, question).await;
        assert_eq!(top["documentId"], expected, "{question}");
    }
}

#[tokio::test]
async fn query_response_has_the_documented_shape() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    let response = server
        .post_json(
            "/v1/query",
            json!({"query": "blue-green cutover", "topK": 2}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("server-timing").is_some());
    let body: Value = response.json().await.unwrap();
    let sources = body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    let first = &sources[0];
    for field in ["documentId", "chunk", "score", "text", "metadata"] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert!(first["score"].as_f64().unwrap() >= sources[1]["score"].as_f64().unwrap());
    assert!(first["score"].as_f64().unwrap() <= 1.0 + 1e-6);
    assert_eq!(first["metadata"]["title"], "Blue-green rollouts");
    assert!(body["answer"].as_str().unwrap().contains("[1]"));
    assert_eq!(body["usage"]["totalTokens"], 0);
    // Filters restrict retrieval to matching documents.
    let filtered = server
        .post_json(
            "/v1/query",
            json!({"query": "blue-green cutover", "filter": {"documentId": "faq.txt"}}),
        )
        .await;
    let body: Value = filtered.json().await.unwrap();
    let ids: Vec<&str> = body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["documentId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["faq.txt"]);
}

#[tokio::test]
async fn writes_are_off_by_default_and_answer_405_naming_the_setting() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    let before = server.state.rag.store.count().await.unwrap();
    let add = json!({"documents": [{"id": "x.md", "text": "Injected."}]});
    let added = server.post_json("/v1/documents", add).await;
    assert_eq!(added.headers()["allow"], "");
    let deleted = (server.client)
        .delete(server.url("/v1/documents/guides/blue-green.md"))
        .send()
        .await
        .unwrap();
    for response in [added, deleted] {
        let (status, code, message) = error_body(response).await;
        assert_eq!((status, code.as_str()), (405, "writes_disabled"));
        assert!(message.contains("server.allowWrites"), "{message}");
    }
    assert_eq!(server.state.rag.store.count().await.unwrap(), before);
}

#[tokio::test]
async fn documents_can_be_added_and_deleted() {
    let allow_writes = |c: &mut RuntimeConfig| c.server.allow_writes = true;
    let server = TestServer::with_corpus(allow_writes, ApiKeys::default()).await;
    let added = server
        .post_json(
            "/v1/documents",
            json!({"documents": [{"id": "notes/zebra.md", "text": "Zebras have black and white stripes.", "metadata": {"lang": "en"}}]}),
        )
        .await;
    assert_eq!(added.status(), 200);
    assert_eq!(
        added.json::<Value>().await.unwrap(),
        json!({"documents": 1, "chunks": 1})
    );
    let top = top_source(&server, "what stripes do zebras have").await;
    assert_eq!(top["documentId"], "notes/zebra.md");
    assert_eq!(top["metadata"]["lang"], "en");

    let deleted = server
        .client
        .delete(server.url("/v1/documents/guides/blue-green.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let body: Value = deleted.json().await.unwrap();
    assert_eq!(body["documentId"], "guides/blue-green.md");
    assert!(body["deletedChunks"].as_u64().unwrap() >= 1);
    let response = server
        .post_json(
            "/v1/query",
            json!({"query": "blue-green rollout cutover colour", "topK": 10}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert!(
        body["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["documentId"] != "guides/blue-green.md"),
        "{body}"
    );

    let again = server
        .client
        .delete(server.url("/v1/documents/guides/blue-green.md"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_body(again).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

#[tokio::test]
async fn reingesting_is_idempotent() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    let before = server.state.rag.store.count().await.unwrap();
    let report =
        rag_runtime::ingest::ingest_paths(server.state.rag.clone(), &[common::corpus()], 2, false)
            .await
            .unwrap();
    assert!(report.failed.is_empty());
    assert_eq!(server.state.rag.store.count().await.unwrap(), before);
    assert_eq!(report.chunks as u64, before);
}

#[tokio::test]
async fn bearer_tokens_guard_the_api_but_not_the_probes() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::new(["s3cret"])).await;
    let body = json!({"query": "rollout"});
    let (status, code, _) = error_body(server.post_json("/v1/query", body.clone()).await).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    let wrong = server
        .client
        .post(server.url("/v1/query"))
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let right = server
        .client
        .post(server.url("/v1/query"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            server
                .client
                .get(server.url(path))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_a_message() {
    let server =
        TestServer::with_corpus(|c| c.server.max_body_bytes = 1024, ApiKeys::default()).await;
    let bad = server
        .client
        .post(server.url("/v1/query"))
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_body(bad).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(message.contains("JSON"), "{message}");

    let missing = server.post_json("/v1/query", json!({"topK": 3})).await;
    let (status, _, message) = error_body(missing).await;
    assert_eq!(status, 400);
    assert!(message.contains("query"), "{message}");

    let (status, _, message) = error_body(
        server
            .post_json("/v1/query", json!({"query": "x", "topK": 0}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.contains("topK"), "{message}");

    let huge = json!({"query": "x".repeat(4096)});
    let (status, code, _) = error_body(server.post_json("/v1/query", huge).await).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));

    let (status, code, _) =
        error_body(server.client.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code, _) = error_body(
        server
            .client
            .get(server.url("/v1/query"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn clients_over_their_quota_get_429() {
    let server = TestServer::with_corpus(
        |c| {
            c.server.rate_limit = Some(RateLimitConfig {
                requests_per_second: 1,
                burst: 1,
            })
        },
        ApiKeys::default(),
    )
    .await;
    let body = json!({"query": "rollout"});
    assert_eq!(
        server.post_json("/v1/query", body.clone()).await.status(),
        200
    );
    let limited = server.post_json("/v1/query", body).await;
    assert!(limited.headers().get("retry-after").is_some());
    let (status, code, _) = error_body(limited).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    // Probes are never limited.
    for _ in 0..3 {
        assert_eq!(
            server
                .client
                .get(server.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn made_up_tokens_share_their_address_quota_when_auth_is_off() {
    let one_per_second = |c: &mut rag_runtime::config::RuntimeConfig| {
        c.server.rate_limit = Some(RateLimitConfig {
            requests_per_second: 1,
            burst: 1,
        })
    };
    let server = TestServer::with_corpus(one_per_second, ApiKeys::default()).await;
    let query = |token: &'static str| {
        server
            .client
            .post(server.url("/v1/query"))
            .bearer_auth(token)
            .json(&json!({"query": "rollout"}))
            .send()
    };
    assert_eq!(query("random-token-1").await.unwrap().status(), 200);
    assert_eq!(query("random-token-2").await.unwrap().status(), 429);
}

#[tokio::test]
async fn metrics_count_requests_and_ingest() {
    let server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    assert_eq!(
        server
            .post_json("/v1/query", json!({"query": "rollout"}))
            .await
            .status(),
        200
    );
    let text = server.metrics().await;
    assert!(
        text.contains(r#"rag_http_requests_total{code="200",method="POST",route="/v1/query"} 1"#),
        "{text}"
    );
    assert!(text.contains("rag_chunks_ingested_total 6"), "{text}");
    assert!(text.contains("rag_documents_ingested_total 6"), "{text}");
    assert!(
        text.contains("rag_retrieval_duration_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("rag_http_requests_in_flight"), "{text}");
}

#[tokio::test]
async fn readiness_fails_while_draining_and_the_server_stops() {
    let mut server = TestServer::with_corpus(|_| {}, ApiKeys::default()).await;
    let ready: Value = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    server
        .state
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, code, _) = error_body(
        server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "not_ready"));
    server.shutdown().await;
    assert!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .is_err()
    );
}
